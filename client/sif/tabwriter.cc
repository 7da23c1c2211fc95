#include "client/sif/tabwriter.h"

#include <algorithm>

namespace berth::client {

std::string TabWriter::Render() const {
  // Every row here has the same number of cells, so one width per column
  // matches tabwriter's per-block widths.
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    for (size_t i = 0; i + 1 < row.size(); ++i) {
      if (widths.size() <= i) widths.resize(i + 1, 0);
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out.append(widths[i] + padding_ - row[i].size(), ' ');
    }
    out += '\n';
  }
  return out;
}

}  // namespace berth::client
