#include "client/action/network_flags.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "client/env_flags.h"
#include "common/status_macros.h"

namespace berth::client {

void AddNetworkFlags(CLI::App& cmd, NetworkFlags& f) {
  cmd.add_flag("--uts", f.uts, "new UTS namespace (the hostname stays the host's)");
  cmd.add_flag("-n,--net", f.net, "new network namespace with only loopback");
  cmd.add_option("--network", f.network, "network type: none (the only one; implies --net)");
  cmd.add_option("--dns", f.dns, "nameservers for /etc/resolv.conf: IP[,IP]")->delimiter(',');
  cmd.add_option("--netns-path", f.netns_path, "run in this network namespace (root only)");
}

absl::Status ApplyNetworkEnvironment(const CLI::App& cmd, NetworkFlags& f) {
  // Apptainer's EnvKeys: X and UNSHARE_X, either one.
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--uts", "UTS", f.uts));
  if (!f.uts) RETURN_IF_ERROR(BoolFromEnv(cmd, "--uts", "UNSHARE_UTS", f.uts));
  RETURN_IF_ERROR(BoolFromEnv(cmd, "--net", "NET", f.net));
  if (!f.net) RETURN_IF_ERROR(BoolFromEnv(cmd, "--net", "UNSHARE_NET", f.net));
  StringFromEnv(cmd, "--network", "NETWORK", f.network);
  StringFromEnv(cmd, "--netns-path", "NETNS_PATH", f.netns_path);
  if (cmd.count("--dns") == 0) {
    if (const char* v = EnvForm("DNS"); v != nullptr && *v != '\0') {
      f.dns = absl::StrSplit(v, ',', absl::SkipWhitespace());
    }
  }
  return absl::OkStatus();
}

void AddNetwork(const NetworkFlags& f, v1::RunRequest& r) {
  r.set_uts(f.uts);
  r.set_net(f.net);
  r.set_network(f.network);
  for (const std::string& server : f.dns) {
    if (absl::string_view s = absl::StripAsciiWhitespace(server); !s.empty())
      r.add_dns(std::string(s));
  }
  r.set_netns_path(f.netns_path);
}

}  // namespace berth::client
