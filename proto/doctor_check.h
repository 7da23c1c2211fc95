// Building `berth doctor` findings (v1::DoctorCheck), on both sides of the
// socket: the client's own checks and the daemon's use the same shape, so
// the report and its --json are one list.
#pragma once

#include <string>

#include "berth/v1/berth.pb.h"

namespace berth::rpc {

inline v1::DoctorCheck MakeCheck(std::string area, std::string name, v1::DoctorSeverity severity,
                                 std::string detail, std::string fix = "") {
  v1::DoctorCheck check;
  check.set_area(std::move(area));
  check.set_name(std::move(name));
  check.set_severity(severity);
  check.set_detail(std::move(detail));
  check.set_fix(std::move(fix));
  return check;
}

}  // namespace berth::rpc
