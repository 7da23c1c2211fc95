// Error-propagation helpers shared by every module.
//
// berth reports failures as absl::Status values that gain context as they rise
// ("mounting image X: loop device: ..."). These macros keep flow code reading
// as a list of named steps instead of nested if-blocks. Abseil 20220623 (the
// Debian 12 version) ships no public equivalents, hence this small header.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace berth {

// Returns `status` with `context: ` prepended to its message, code kept.
inline absl::Status Annotate(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace berth

#define BERTH_CONCAT_INNER_(a, b) a##b
#define BERTH_CONCAT_(a, b) BERTH_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                   \
  do {                                          \
    if (absl::Status _st = (expr); !_st.ok()) { \
      return _st;                               \
    }                                           \
  } while (0)

// RETURN_IF_ERROR_CTX(expr, "what we were doing") adds context on the way up.
#define RETURN_IF_ERROR_CTX(expr, ctx)          \
  do {                                          \
    if (absl::Status _st = (expr); !_st.ok()) { \
      return ::berth::Annotate(_st, ctx);       \
    }                                           \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                           \
  if (!tmp.ok()) return tmp.status();           \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ASSIGN_OR_RETURN_IMPL_(BERTH_CONCAT_(_status_or_, __LINE__), lhs, rexpr)
