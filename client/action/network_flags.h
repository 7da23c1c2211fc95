// The network and UTS flags of run/exec/shell/instance (Apptainer's names and
// environment forms): --uts, -n/--net, --network, --dns and --netns-path,
// turned into the request. berth has no CNI networks: --net gives a network
// namespace with only loopback (Apptainer's --network none). The daemon
// checks every value again (netns-path is for root callers only).
// Privilege: none; the client, as the user.
#pragma once

#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "berth/v1/berth.pb.h"

namespace berth::client {

struct NetworkFlags {
  bool uts = false, net = false;
  std::string network;
  std::vector<std::string> dns;  // addresses, comma-separated on the command line
  std::string netns_path;
};

void AddNetworkFlags(CLI::App& cmd, NetworkFlags& flags);
absl::Status ApplyNetworkEnvironment(const CLI::App& cmd, NetworkFlags& flags);
void AddNetwork(const NetworkFlags& flags, v1::RunRequest& request);

}  // namespace berth::client
