// Which Slurm step a process belongs to, read from its cgroup and from the
// environment it was started with (daemon/shared/share_key.h).
#include "daemon/shared/share_key.h"

#include <catch2/catch.hpp>
#include <string>

namespace {

using berth::daemon::shared::SlurmStepFromCgroup;
using berth::daemon::shared::SlurmStepFromEnviron;

std::string Step(const std::optional<berth::daemon::shared::SlurmStep>& s) {
  return s ? s->job + "." + s->step : "none";
}

std::string Env(std::initializer_list<std::string> vars) {
  std::string out;
  for (const auto& v : vars) out += v + '\0';
  return out;
}

}  // namespace

TEST_CASE("the Slurm step comes from the first job_/step_ pair of a cgroup path", "[mpi]") {
  struct Case {
    const char* cgroup;
    const char* want;
  } cases[] = {
      // cgroup v1, task/cgroup: every controller names the step
      {"12:cpuset:/slurm_berthci/uid_1001/job_42/step_0/task_1\n"
       "4:memory:/slurm_berthci/uid_1001/job_42/step_0/task_1\n",
       "42.0"},
      // cgroup v2 (Slurm 22.05+): under slurmstepd's scope
      {"0::/system.slice/slurmstepd.scope/job_7/step_3/user/task_0\n", "7.3"},
      // a user's own sub-cgroup named like a step below Slurm's: Slurm's wins
      {"0::/system.slice/slurmstepd.scope/job_7/step_3/user/job_9/step_1\n", "7.3"},
      // the batch and extern steps are not numbered: no shared step
      {"0::/system.slice/slurmstepd.scope/job_7/step_batch/user/task_0\n", "none"},
      {"0::/system.slice/slurmstepd.scope/job_7/step_extern\n", "none"},
      // no Slurm at all
      {"0::/user.slice/user-1001.slice/session-3.scope\n", "none"},
      {"", "none"},
      // malformed ids
      {"0::/job_/step_0\n", "none"},
      {"0::/job_12345678901/step_0\n", "none"},
      {"0::/job_1x/step_0\n", "none"},
      {"garbage without colons\n", "none"},
  };
  for (const Case& c : cases) {
    INFO(c.cgroup);
    CHECK(Step(SlurmStepFromCgroup(c.cgroup)) == c.want);
  }
}

TEST_CASE("the Slurm step comes from SLURM_JOB_ID and SLURM_STEP_ID", "[mpi]") {
  CHECK(Step(SlurmStepFromEnviron(Env({"PATH=/bin", "SLURM_JOB_ID=42", "SLURM_STEP_ID=1"}))) ==
        "42.1");
  // the first of each counts, as getenv would see it
  CHECK(Step(SlurmStepFromEnviron(Env(
            {"SLURM_STEP_ID=0", "SLURM_JOB_ID=5", "SLURM_JOB_ID=6", "SLURM_STEP_ID=9"}))) == "5.0");
  // a batch script has a job but no step: it shares with nobody
  CHECK(Step(SlurmStepFromEnviron(Env({"SLURM_JOB_ID=42"}))) == "none");
  CHECK(Step(SlurmStepFromEnviron(Env({"SLURM_STEP_ID=0"}))) == "none");
  CHECK(Step(SlurmStepFromEnviron(Env({"SLURM_JOB_ID=4 2", "SLURM_STEP_ID=0"}))) == "none");
  CHECK(Step(SlurmStepFromEnviron(Env({"SLURM_JOB_ID=", "SLURM_STEP_ID=0"}))) == "none");
  CHECK(Step(SlurmStepFromEnviron(Env({"SLURM_JOB_ID=1", "SLURM_STEP_ID=-1"}))) == "none");
  // names that only start alike do not count
  CHECK(Step(SlurmStepFromEnviron(Env({"XSLURM_JOB_ID=1", "SLURM_STEP_ID=0"}))) == "none");
  CHECK(Step(SlurmStepFromEnviron("")) == "none");
}
