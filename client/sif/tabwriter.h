// Column alignment the way Go's text/tabwriter does it (flags 0, pad ' '),
// which is what siftool uses. Matching it cell for cell is what makes
// `berth sif header|info` output byte-identical to siftool's.
#pragma once

#include <string>
#include <vector>

namespace berth::client {

class TabWriter {
 public:
  // `padding` spaces are added to the widest cell of each column.
  explicit TabWriter(size_t padding) : padding_(padding) {}

  // One line: every cell but the last is aligned; the last is free text.
  void AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  std::string Render() const;

 private:
  size_t padding_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace berth::client
