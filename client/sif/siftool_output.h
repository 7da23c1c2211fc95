// Text renderings of a SIF image that are byte-identical to siftool's
// `header`, `list` and `info` (sylabs/sif internal/app/siftool/info.go), so
// scripts written against siftool/`apptainer sif` keep working on berth.
#pragma once

#include <string>

#include "sif/image.h"

namespace berth::client {

std::string RenderHeader(const sif::Image& image);
std::string RenderList(const sif::Image& image);
std::string RenderInfo(const sif::Descriptor& d);

// siftool's human-readable size: "27 KiB", "454 B".
std::string ReadableSize(int64_t size);
// Go's time.Time.String() for a UTC Unix time: "2020-06-30 00:01:56 +0000 UTC".
std::string GoUtcTime(int64_t unix_seconds);

}  // namespace berth::client
