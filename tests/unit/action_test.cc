// Apptainer's environment rules and the action shim, run through a real /bin/sh.
#include "daemon/action/action.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "tests/unit/test_util.h"

namespace berth::daemon::action {
namespace {

bool Has(const std::vector<std::string>& env, const std::string& entry) {
  return std::find(env.begin(), env.end(), entry) != env.end();
}

bool HasName(const std::vector<std::string>& env, const std::string& name) {
  return std::any_of(env.begin(), env.end(),
                     [&](const std::string& e) { return e.rfind(name + "=", 0) == 0; });
}

// Runs the launch command on the host and returns what `env` printed.
std::string RunOnHost(const LaunchCommand& cmd) {
  int pipefd[2];
  REQUIRE(::pipe(pipefd) == 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    std::vector<char*> argv, envp;
    for (auto& a : cmd.argv) argv.push_back(const_cast<char*>(a.c_str()));
    for (auto& e : cmd.env) envp.push_back(const_cast<char*>(e.c_str()));
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) out.append(buf, n);
  ::close(pipefd[0]);
  int status;
  ::waitpid(pid, &status, 0);
  return out;
}

TEST_CASE("host variables pass, runtime variables are reset", "[env]") {
  auto env =
      BuildEnvironment({.host_env = {"FOO=bar", "PATH=/evil", "HOME=/root", "LD_LIBRARY_PATH=/x",
                                     "APPTAINER_BIND=/a", "APPTAINERENV_X=1"},
                        .container_home = "/home/u",
                        .image_path = "/img/a.sif"});
  REQUIRE(env.ok());
  CHECK(Has(env->base, "FOO=bar"));
  CHECK(Has(env->base, std::string("PATH=") + kDefaultPath));
  CHECK(Has(env->base, "HOME=/home/u"));
  CHECK_FALSE(HasName(env->base, "LD_LIBRARY_PATH"));
  CHECK_FALSE(Has(env->base, "APPTAINER_BIND=/a"));
  CHECK_FALSE(HasName(env->base, "APPTAINERENV_X"));
  CHECK(Has(env->base, "APPTAINER_NAME=a.sif"));
  CHECK(Has(env->base, "APPTAINER_COMMAND=exec"));
  REQUIRE(env->overrides.size() == 1);
  CHECK(env->overrides[0] == Override{"X", "1", true});
}

TEST_CASE("cleanenv keeps TERM and proxies, sets LANG=C", "[env]") {
  auto env = BuildEnvironment(
      {.host_env = {"FOO=bar", "TERM=xterm", "https_proxy=p", "NO_PROXY=n", "APPTAINERENV_Y=2"},
       .clean_env = true});
  REQUIRE(env.ok());
  CHECK_FALSE(HasName(env->base, "FOO"));
  CHECK(Has(env->base, "TERM=xterm"));
  CHECK(Has(env->base, "https_proxy=p"));
  CHECK(Has(env->base, "NO_PROXY=n"));
  CHECK(Has(env->base, "LANG=C"));
  CHECK(env->overrides.size() == 1);
}

TEST_CASE("override precedence: APPTAINERENV < --env-file < --env", "[env]") {
  auto env = BuildEnvironment(
      {.host_env = {"APPTAINERENV_A=env", "SINGULARITYENV_A=old", "SINGULARITYENV_B=sing",
                    "APPTAINERENV_PATH=/no", "APPTAINERENV_PREPEND_PATH=/pre"},
       .env_flags = {"A=flag,C=c"},
       .env_file_lines = {"# comment", "A='file'", "export D=\"d\""}});
  REQUIRE(env.ok());
  // Later overrides win when applied in order.
  std::map<std::string, std::string> final;
  for (auto& o : env->overrides) final[o.name] = o.value;
  CHECK(final["A"] == "flag");
  CHECK(final["B"] == "sing");
  CHECK(final["C"] == "c");
  CHECK(final["D"] == "d");
  // As Apptainer 1.x: a PATH override is honoured.
  CHECK(final["PATH"] == "/no");
  CHECK(env->prepend_path == "/pre");
}

TEST_CASE("hostile environments are refused with one line", "[env][hostile]") {
  CHECK_FALSE(BuildEnvironment({.host_env = {std::string("A=b\0c", 5)}}).ok());
  CHECK_FALSE(BuildEnvironment({.host_env = {"NOEQUALS"}}).ok());
  CHECK_FALSE(BuildEnvironment({.host_env = {"A=" + std::string(200000, 'x')}}).ok());
  std::vector<std::string> many(5000, "A=b");
  auto st = BuildEnvironment({.host_env = many}).status();
  CHECK(std::string(st.message()).find("--cleanenv") != std::string::npos);
  CHECK_FALSE(BuildEnvironment({.env_flags = {"1BAD=x"}}).ok());
  CHECK_FALSE(BuildEnvironment({.env_flags = {"novalue"}}).ok());
}

TEST_CASE("the shim exports overrides after the base and fixes PATH", "[env][shim]") {
  auto env = BuildEnvironment({.host_env = {"A=host", "APPTAINERENV_A=override with spaces $HOME",
                                            "APPTAINERENV_APPEND_PATH=/app"},
                               .container_home = "/h"});
  REQUIRE(env.ok());
  auto cmd = BuildCommand({.action = Action::kExec, .args = {"/usr/bin/env"}}, *env);
  REQUIRE(cmd.ok());
  std::string out = RunOnHost(*cmd);
  CHECK(out.find("A=override with spaces /h\n") != std::string::npos);
  CHECK(out.find(std::string("PATH=") + kDefaultPath + ":/app\n") != std::string::npos);
  CHECK(out.find("BERTH_APPEND_PATH") == std::string::npos);
}

TEST_CASE("values are expanded as Apptainer's are, unless --no-eval", "[env][shim]") {
  EnvRequest request{.host_env = {"APPTAINERENV_A=$HOME/a", "APPTAINERENV_Q=\"quoted\" 'single'",
                                  "APPTAINERENV_SUB=$(echo sub)", "APPTAINERENV_PATH=/first:$PATH"},
                     .env_flags = {"F=${HOME}x"},
                     .env_file_lines = {"S='$HOME'", "D=\"$HOME\"", "N=$A-n"},
                     .container_home = "/h",
                     .runtime_env = {{"R", "$HOME"}}};
  auto env = BuildEnvironment(request);
  REQUIRE(env.ok());
  auto cmd = BuildCommand({.action = Action::kExec, .args = {"/usr/bin/env"}}, *env);
  REQUIRE(cmd.ok());
  // A leading newline: every entry, the first one too, is "\nK=V\n".
  std::string out = "\n" + RunOnHost(*cmd);
  CHECK(out.find("\nA=/h/a\n") != std::string::npos);
  // Quotes are part of the value, as in Apptainer's evaluation.
  CHECK(out.find("\nQ=\"quoted\" 'single'\n") != std::string::npos);
  CHECK(out.find("\nSUB=sub\n") != std::string::npos);
  CHECK(out.find(std::string("\nPATH=/first:") + kDefaultPath + "\n") != std::string::npos);
  CHECK(out.find("\nF=/hx\n") != std::string::npos);
  // An env file is shell: single quotes keep $HOME, double quotes expand it;
  // a value may use one set before it.
  CHECK(out.find("\nS=$HOME\n") != std::string::npos);
  CHECK(out.find("\nD=/h\n") != std::string::npos);
  CHECK(out.find("\nN=/h/a-n\n") != std::string::npos);
  // What the daemon sets is never shell input.
  CHECK(out.find("\nR=$HOME\n") != std::string::npos);

  request.no_eval = true;
  env = BuildEnvironment(request);
  REQUIRE(env.ok());
  cmd = BuildCommand({.action = Action::kExec, .args = {"/usr/bin/env"}}, *env);
  REQUIRE(cmd.ok());
  out = "\n" + RunOnHost(*cmd);
  CHECK(out.find("\nA=$HOME/a\n") != std::string::npos);
  CHECK(out.find("\nSUB=$(echo sub)\n") != std::string::npos);
  CHECK(out.find("\nF=${HOME}x\n") != std::string::npos);
}

TEST_CASE("shell is bash --norc where the image has it, else sh, with the arguments", "[shim]") {
  auto env = BuildEnvironment({.action = Action::kShell});
  REQUIRE(env.ok());
  auto cmd = BuildCommand({.action = Action::kShell, .args = {"-c", "echo $0 $SHELL"}}, *env);
  REQUIRE(cmd.ok());
  std::string out = RunOnHost(*cmd);
  // The host has bash: the action picks it and tells the payload through SHELL.
  CHECK(out == "/bin/bash /bin/bash\n");
  cmd = BuildCommand({.action = Action::kShell, .args = {"-c", "echo $0"}, .shell = "/bin/dash"},
                     *env);
  REQUIRE(cmd.ok());
  CHECK(RunOnHost(*cmd) == "/bin/dash\n");
}

TEST_CASE("without a shell the overrides are folded into env", "[env][shim]") {
  auto env = BuildEnvironment({.host_env = {"A=host", "APPTAINERENV_A=new"}});
  REQUIRE(env.ok());
  auto cmd = BuildCommand({.action = Action::kRun, .args = {"x"}, .image_has_shell = false}, *env);
  REQUIRE(cmd.ok());
  CHECK(cmd->argv == std::vector<std::string>{"/.singularity.d/runscript", "x"});
  CHECK(Has(cmd->env, "A=new"));
  CHECK_FALSE(Has(cmd->env, "A=host"));
  CHECK_FALSE(BuildCommand({.action = Action::kExec}, *env).ok());
}

}  // namespace
}  // namespace berth::daemon::action
