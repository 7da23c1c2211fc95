// The squashfs writer: file data through libsquashfs's multi-threaded block
// processor as it is fed, then, from a finished tree (tree.h), the inode and
// directory tables, fragment, id and xattr tables and the super block.
//
// Use:
//   ASSIGN_OR_RETURN(auto writer, Writer::Create(target, options));
//   for each regular file:  writer->BeginFile(*node.data); Append(...)...; EndFile();
//   ASSIGN_OR_RETURN(int64_t size, writer->Finish(root, stats));
// The image is padded to 4 KiB (loop devices need it), like mksquashfs's.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "squash/options.h"
#include "squash/tree.h"

namespace berth::squash {

struct Stats {
  int64_t files = 0;  // non-directory inodes
  int64_t directories = 0;
  int64_t bytes = 0;  // the image, padded
};

class Writer {
 public:
  static absl::StatusOr<std::unique_ptr<Writer>> Create(const Target& target,
                                                        const Options& options);
  ~Writer();

  // One file's data, in order; the inode is filled in `data`.
  absl::Status BeginFile(FileData& data);
  absl::Status Append(const void* bytes, size_t size);
  absl::Status EndFile();
  // A whole small file at once.
  absl::Status AddFile(FileData& data, std::string_view content);

  // Waits for the data, then writes the tree and the tables. `root` must
  // hold every file whose data was added. Returns the padded image size.
  absl::StatusOr<int64_t> Finish(Node& root, Stats& stats);

  // The number of compression threads in use.
  unsigned threads() const;

 private:
  struct State;
  explicit Writer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace berth::squash
