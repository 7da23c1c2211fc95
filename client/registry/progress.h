// Transfer progress for pull and push, as Apptainer users expect it: on a
// terminal, a live line per item (bytes, rate, ETA) redrawn in place; else
// one line per finished item; nothing with --quiet.
#pragma once

#include <chrono>
#include <cstdio>
#include <map>
#include <string>

#include "berth/v1/berth.pb.h"

namespace berth::client {

class ProgressDisplay {
 public:
  ProgressDisplay(bool quiet, bool tty);
  void Update(const v1::TransferProgress& p);
  void Done();

 private:
  struct Item {
    std::chrono::steady_clock::time_point start;
    bool finished = false;
  };
  void Draw(const v1::TransferProgress& p, const Item& item, bool final_line);

  bool quiet_;
  bool tty_;
  bool line_open_ = false;
  std::map<std::string, Item> items_;
};

// "1.5 MiB"
std::string HumanBytes(double bytes);

}  // namespace berth::client
