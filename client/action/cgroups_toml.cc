#include "client/action/cgroups_toml.h"

#include <set>

#define TOML_HEADER_ONLY 1
#define TOML_EXCEPTIONS 0
#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace berth::client {
namespace {

class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  absl::Status Bad(const toml::node& n, absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s:%d: %s", origin_, n.source().begin.line, std::string(what)));
  }

  // Refuses keys outside `known` and those berth cannot apply.
  absl::Status Keys(const toml::table& t, const std::set<std::string>& known,
                    const std::set<std::string>& unsupported, const std::string& section) const {
    for (const auto& [key, node] : t) {
      std::string k(key.str());
      if (unsupported.count(k) != 0) {
        return Bad(node, absl::StrCat(section, k, ": not supported by berth (docs/compat.md)"));
      }
      if (known.count(k) == 0) return Bad(node, absl::StrCat("unknown key ", section, k));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::optional<int64_t>> Int(const toml::table& t, const char* key) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::optional<int64_t>();
    if (!n->is_integer()) return Bad(*n, absl::StrCat(key, " must be an integer"));
    return std::optional<int64_t>(n->as_integer()->get());
  }

  absl::StatusOr<std::optional<uint64_t>> Unsigned(const toml::table& t, const char* key) const {
    ASSIGN_OR_RETURN(std::optional<int64_t> v, Int(t, key));
    if (v && *v < 0) return Bad(*t.get(key), absl::StrCat(key, " must not be negative"));
    if (!v) return std::optional<uint64_t>();
    return std::optional<uint64_t>(static_cast<uint64_t>(*v));
  }

  absl::StatusOr<std::string> String(const toml::table& t, const char* key) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return std::string();
    if (!n->is_string()) return Bad(*n, absl::StrCat(key, " must be a string"));
    return n->as_string()->get();
  }

  absl::StatusOr<const toml::table*> Table(const toml::table& t, const char* key) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) return Bad(*n, absl::StrCat("[", key, "] must be a table"));
    return n->as_table();
  }

  // [[blockIO.weightDevice]] / throttle lists: {major, minor, <value_key>}.
  absl::Status Devices(const toml::table& t, const char* key, const char* value_key,
                       google::protobuf::RepeatedPtrField<v1::DeviceValue>* out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return absl::OkStatus();
    if (!n->is_array()) return Bad(*n, absl::StrCat(key, " must be an array of tables"));
    for (const toml::node& item : *n->as_array()) {
      if (!item.is_table()) return Bad(item, absl::StrCat(key, " entries must be tables"));
      const toml::table& d = *item.as_table();
      std::string section = absl::StrCat("blockIO.", key, ".");
      RETURN_IF_ERROR(Keys(d, {"major", "minor", value_key}, {"leafWeight"}, section));
      ASSIGN_OR_RETURN(std::optional<uint64_t> major, Unsigned(d, "major"));
      ASSIGN_OR_RETURN(std::optional<uint64_t> minor, Unsigned(d, "minor"));
      ASSIGN_OR_RETURN(std::optional<uint64_t> value, Unsigned(d, value_key));
      if (!major || !minor || !value || *major > UINT32_MAX || *minor > UINT32_MAX) {
        return Bad(item, absl::StrCat(key, " entries need major, minor and ", value_key));
      }
      v1::DeviceValue* v = out->Add();
      v->set_major(static_cast<uint32_t>(*major));
      v->set_minor(static_cast<uint32_t>(*minor));
      v->set_value(*value);
    }
    return absl::OkStatus();
  }

 private:
  std::string origin_;
};

absl::Status ReadMemory(const Reader& rd, const toml::table& m, v1::Resources& r) {
  RETURN_IF_ERROR(rd.Keys(m, {"limit", "reservation", "swap", "swappiness", "disableOOMKiller"},
                          {"kernel", "kernelTCP"}, "memory."));
  ASSIGN_OR_RETURN(auto limit, rd.Int(m, "limit"));
  ASSIGN_OR_RETURN(auto reservation, rd.Int(m, "reservation"));
  ASSIGN_OR_RETURN(auto swap, rd.Int(m, "swap"));
  ASSIGN_OR_RETURN(auto swappiness, rd.Unsigned(m, "swappiness"));
  if (limit) r.set_memory_limit(*limit);
  if (reservation) r.set_memory_reservation(*reservation);
  if (swap) r.set_memory_swap(*swap);
  if (swappiness) r.set_memory_swappiness(*swappiness);
  if (const toml::node* n = m.get("disableOOMKiller")) {
    if (!n->is_boolean()) return rd.Bad(*n, "disableOOMKiller must be true or false");
    r.set_disable_oom_killer(n->as_boolean()->get());
  }
  return absl::OkStatus();
}

absl::Status ReadCpu(const Reader& rd, const toml::table& c, v1::Resources& r) {
  RETURN_IF_ERROR(rd.Keys(c, {"shares", "quota", "period", "cpus", "mems"},
                          {"realtimeRuntime", "realtimePeriod", "idle"}, "cpu."));
  ASSIGN_OR_RETURN(auto shares, rd.Unsigned(c, "shares"));
  ASSIGN_OR_RETURN(auto quota, rd.Int(c, "quota"));
  ASSIGN_OR_RETURN(auto period, rd.Unsigned(c, "period"));
  if (shares) r.set_cpu_shares(*shares);
  if (quota) r.set_cpu_quota(*quota);
  if (period) r.set_cpu_period(*period);
  ASSIGN_OR_RETURN(std::string cpus, rd.String(c, "cpus"));
  ASSIGN_OR_RETURN(std::string mems, rd.String(c, "mems"));
  r.set_cpuset_cpus(cpus);
  r.set_cpuset_mems(mems);
  return absl::OkStatus();
}

absl::Status ReadBlockIo(const Reader& rd, const toml::table& b, v1::Resources& r) {
  RETURN_IF_ERROR(
      rd.Keys(b,
              {"weight", "weightDevice", "throttleReadBpsDevice", "throttleWriteBpsDevice",
               "throttleReadIOPSDevice", "throttleWriteIOPSDevice"},
              {"leafWeight"}, "blockIO."));
  ASSIGN_OR_RETURN(auto weight, rd.Unsigned(b, "weight"));
  if (weight) r.set_blkio_weight(static_cast<uint32_t>(std::min<uint64_t>(*weight, UINT32_MAX)));
  RETURN_IF_ERROR(rd.Devices(b, "weightDevice", "weight", r.mutable_blkio_weight_device()));
  RETURN_IF_ERROR(rd.Devices(b, "throttleReadBpsDevice", "rate", r.mutable_throttle_read_bps()));
  RETURN_IF_ERROR(rd.Devices(b, "throttleWriteBpsDevice", "rate", r.mutable_throttle_write_bps()));
  RETURN_IF_ERROR(rd.Devices(b, "throttleReadIOPSDevice", "rate", r.mutable_throttle_read_iops()));
  RETURN_IF_ERROR(
      rd.Devices(b, "throttleWriteIOPSDevice", "rate", r.mutable_throttle_write_iops()));
  return absl::OkStatus();
}

// Apptainer's default is one allow-all rule; anything narrower would need
// a device cgroup berth does not manage.
absl::Status ReadDevices(const Reader& rd, const toml::node& n) {
  if (!n.is_array()) return rd.Bad(n, "devices must be an array of tables [[devices]]");
  for (const toml::node& item : *n.as_array()) {
    if (!item.is_table()) return rd.Bad(item, "[[devices]] entries must be tables");
    const toml::table& d = *item.as_table();
    RETURN_IF_ERROR(rd.Keys(d, {"allow", "type", "major", "minor", "access"}, {}, "devices."));
    const toml::node* allow = d.get("allow");
    ASSIGN_OR_RETURN(std::string type, rd.String(d, "type"));
    ASSIGN_OR_RETURN(std::string access, rd.String(d, "access"));
    bool allow_all = allow != nullptr && allow->is_boolean() && allow->as_boolean()->get() &&
                     (type.empty() || type == "a") && d.get("major") == nullptr &&
                     d.get("minor") == nullptr && (access.empty() || access == "rwm");
    if (!allow_all) {
      return rd.Bad(item,
                    "[[devices]]: only the allow-all rule is supported (berth does not manage "
                    "device cgroups; the caller's device cgroup still applies)");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Resources> ParseCgroupsToml(const std::string& text, const std::string& origin) {
  toml::parse_result parsed = toml::parse(text, origin);
  if (!parsed) {
    const toml::parse_error& err = parsed.error();
    return absl::InvalidArgumentError(absl::StrFormat("%s:%d: %s", origin, err.source().begin.line,
                                                      std::string(err.description())));
  }
  const toml::table& root = parsed.table();
  Reader rd(origin);
  RETURN_IF_ERROR(
      rd.Keys(root, {"memory", "cpu", "pids", "blockIO", "hugepageLimits", "unified", "devices"},
              {"network", "rdma"}, ""));
  v1::Resources r;
  ASSIGN_OR_RETURN(const toml::table* memory, rd.Table(root, "memory"));
  if (memory != nullptr) RETURN_IF_ERROR(ReadMemory(rd, *memory, r));
  ASSIGN_OR_RETURN(const toml::table* cpu, rd.Table(root, "cpu"));
  if (cpu != nullptr) RETURN_IF_ERROR(ReadCpu(rd, *cpu, r));
  ASSIGN_OR_RETURN(const toml::table* pids, rd.Table(root, "pids"));
  if (pids != nullptr) {
    RETURN_IF_ERROR(rd.Keys(*pids, {"limit"}, {}, "pids."));
    ASSIGN_OR_RETURN(auto limit, rd.Int(*pids, "limit"));
    if (limit) r.set_pids_limit(*limit);
  }
  ASSIGN_OR_RETURN(const toml::table* block_io, rd.Table(root, "blockIO"));
  if (block_io != nullptr) RETURN_IF_ERROR(ReadBlockIo(rd, *block_io, r));
  if (const toml::node* n = root.get("devices")) RETURN_IF_ERROR(ReadDevices(rd, *n));
  if (const toml::node* n = root.get("hugepageLimits")) {
    if (!n->is_array()) return rd.Bad(*n, "hugepageLimits must be an array [[hugepageLimits]]");
    for (const toml::node& item : *n->as_array()) {
      if (!item.is_table()) return rd.Bad(item, "[[hugepageLimits]] entries must be tables");
      const toml::table& h = *item.as_table();
      RETURN_IF_ERROR(rd.Keys(h, {"pageSize", "limit"}, {}, "hugepageLimits."));
      ASSIGN_OR_RETURN(std::string size, rd.String(h, "pageSize"));
      ASSIGN_OR_RETURN(auto limit, rd.Unsigned(h, "limit"));
      if (size.empty() || !limit) return rd.Bad(item, "hugepageLimits need pageSize and limit");
      v1::HugepageLimit* out = r.add_hugepage_limits();
      out->set_page_size(size);
      out->set_limit(*limit);
    }
  }
  ASSIGN_OR_RETURN(const toml::table* unified, rd.Table(root, "unified"));
  if (unified != nullptr) {
    for (const auto& [key, node] : *unified) {
      if (!node.is_string())
        return rd.Bad(node, absl::StrCat("unified.", std::string(key.str()), " must be a string"));
      (*r.mutable_unified())[std::string(key.str())] = node.as_string()->get();
    }
  }
  return r;
}

}  // namespace berth::client
