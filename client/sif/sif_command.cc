#include "client/sif/sif_command.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/sif/siftool_output.h"
#include "common/digest.h"
#include "common/file_io.h"
#include "common/status_macros.h"
#include "sif/image.h"

namespace berth::client {
namespace {

struct AddFlags {
  std::string image;
  std::string object;
  int32_t datatype = 0;
  int32_t parttype = 0;
  int32_t partfs = 0;
  int32_t partarch = 0;
  int32_t signhash = 0;
  std::string signentity;
  std::string sbomformat;
  uint32_t groupid = 0;
  uint32_t link = 0;
  int64_t alignment = -1;
  std::string filename;
};

absl::Status Print(const std::string& text) {
  return WriteAll(STDOUT_FILENO,
                  std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

absl::StatusOr<sif::Image> Load(const std::string& path, sif::OpenMode mode) {
  auto image = sif::Image::Open(path, mode);
  if (!image.ok()) return Annotate(image.status(), "loading SIF image");
  return image;
}

absl::StatusOr<sif::DataType> DataTypeFromFlag(int32_t n) {
  if (n < 1 || n > 11) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--datatype %d is not a SIF data type: use 1 (Deffile) to 11 (OCI.Blob)", n));
  }
  return static_cast<sif::DataType>(0x4000 + n);
}

absl::Status FillTypeMetadata(const AddFlags& f, sif::DataType type, int object_fd,
                              sif::ObjectInput& in) {
  switch (type) {
    case sif::DataType::kPartition: {
      if (f.parttype == 0 || f.partfs == 0 || f.partarch == 0) {
        return absl::InvalidArgumentError(
            "with partition datatype, --partfs, --parttype and --partarch must be passed");
      }
      // Unknown architecture numbers are stored as "00", as siftool does.
      in.partition = sif::PartitionInfo{f.partfs, f.parttype,
                                        sif::ArchCodeFromNumber(f.partarch).value_or("00")};
      break;
    }
    case sif::DataType::kSignature: {
      std::string fp;
      if (f.signentity.size() % 2 != 0 ||
          !std::all_of(f.signentity.begin(), f.signentity.end(), ::isxdigit)) {
        return absl::InvalidArgumentError("--signentity must be a hex fingerprint (40 hex digits)");
      }
      fp = absl::HexStringToBytes(f.signentity);
      if (fp.size() != sif::kFingerprintLen) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "invalid signing entity fingerprint length: got %d, want 20", fp.size()));
      }
      if (f.signhash < 1 || f.signhash > 5) {
        return absl::InvalidArgumentError(
            absl::StrFormat("invalid hash type: %d (use --signhash 1..5)", f.signhash));
      }
      in.signature = sif::SignatureInfo{f.signhash, fp};
      break;
    }
    case sif::DataType::kSbom: {
      if (f.sbomformat.empty()) {
        return absl::InvalidArgumentError("with SBOM datatype, --sbomformat must be passed");
      }
      auto format =
          sif::SbomFormatFromName(f.sbomformat == "github" ? "github-json" : f.sbomformat);
      if (!format) {
        return absl::InvalidArgumentError(absl::StrCat("invalid SBOM format: ", f.sbomformat));
      }
      in.sbom_format = *format;
      break;
    }
    case sif::DataType::kOciBlob:
    case sif::DataType::kOciRootIndex: {
      ASSIGN_OR_RETURN(std::string hex, DigestStream(object_fd, DigestAlgorithm::kSha256));
      if (::lseek(object_fd, 0, SEEK_SET) != 0) {
        return absl::InvalidArgumentError("OCI objects must come from a regular file");
      }
      in.oci_digest = absl::StrCat("sha256:", hex);
      break;
    }
    default:
      break;
  }
  return absl::OkStatus();
}

absl::Status RunAdd(const AddFlags& f, bool alignment_set, bool filename_set) {
  ASSIGN_OR_RETURN(sif::DataType type, DataTypeFromFlag(f.datatype));
  ASSIGN_OR_RETURN(UniqueFd object_fd, OpenFile(f.object, O_RDONLY));
  sif::ObjectInput in;
  in.type = type;
  in.data_fd = object_fd.get();
  in.group_id = f.groupid;
  in.link_raw = f.link;
  in.alignment = alignment_set ? f.alignment : -1;
  // siftool's help promises the input file name as default, but it stores an
  // empty name; byte compatibility wins.
  if (filename_set) in.name = f.filename;
  RETURN_IF_ERROR(FillTypeMetadata(f, type, object_fd.get(), in));
  ASSIGN_OR_RETURN(sif::Image image, Load(f.image, sif::OpenMode::kReadWrite));
  return Annotate(image.AddObject(in), absl::StrCat("adding ", f.object, " to ", f.image));
}

uint32_t* AddIdArgument(CLI::App* cmd, uint32_t* id) {
  cmd->add_option("id", *id, "object ID")->required();
  return id;
}

}  // namespace

void RegisterSifCommands(CLI::App& app, std::shared_ptr<absl::Status> result) {
  CLI::App* sif = app.add_subcommand("sif", "Manipulate Singularity Image Format (SIF) images");
  sif->require_subcommand(1);

  struct State {
    std::string path;
    uint32_t id = 0;
    bool zero = false, compact = false, deterministic = false;
    std::string launch_script;
    AddFlags add;
  };
  auto st = std::make_shared<State>();

  auto* header = sif->add_subcommand("header", "Display global header");
  header->add_option("sif_path", st->path)->required();
  header->callback([st, result] {
    auto image = Load(st->path, sif::OpenMode::kReadOnly);
    *result = image.ok() ? Print(RenderHeader(*image)) : image.status();
  });

  auto* list = sif->add_subcommand("list", "List data objects");
  list->add_option("sif_path", st->path)->required();
  list->callback([st, result] {
    auto image = Load(st->path, sif::OpenMode::kReadOnly);
    *result = image.ok() ? Print(RenderList(*image)) : image.status();
  });

  auto* info = sif->add_subcommand("info", "Display data object info");
  AddIdArgument(info, &st->id);
  info->add_option("sif_path", st->path)->required();
  info->callback([st, result] {
    auto image = Load(st->path, sif::OpenMode::kReadOnly);
    if (!image.ok()) return void(*result = image.status());
    auto d = image->FindById(st->id);
    *result = d.ok() ? Print(RenderInfo(**d)) : d.status();
  });

  auto* dump = sif->add_subcommand("dump", "Dump data object");
  AddIdArgument(dump, &st->id);
  dump->add_option("sif_path", st->path)->required();
  dump->callback([st, result] {
    auto image = Load(st->path, sif::OpenMode::kReadOnly);
    if (!image.ok()) return void(*result = image.status());
    auto d = image->FindById(st->id);
    *result = d.ok() ? image->StreamObject(**d, STDOUT_FILENO) : d.status();
  });

  auto* create = sif->add_subcommand("new", "Create SIF image");
  create->add_option("sif_path", st->path)->required();
  create->add_flag("--deterministic", st->deterministic,
                   "zero UUID and timestamps, for reproducible images");
  create->add_option("--launch-script", st->launch_script, "launch script (< 32 bytes)");
  create->callback([st, result] {
    sif::CreateOptions options;
    options.deterministic = st->deterministic;
    options.launch_script = st->launch_script;
    *result = Annotate(sif::Image::Create(st->path, options).status(),
                       absl::StrCat("creating ", st->path));
  });

  auto* add = sif->add_subcommand("add", "Add data object");
  AddFlags& a = st->add;
  add->add_option("sif_path", a.image)->required();
  add->add_option("object_path", a.object)->required();
  add->add_option("--datatype", a.datatype, "the type of data to add (1-11)");
  add->add_option("--parttype", a.parttype,
                  "partition type (1 System, 2 PrimSys, 3 Data, 4 Overlay)");
  add->add_option("--partfs", a.partfs,
                  "partition filesystem (1 Squash, 2 Ext3, 3 ImmuObj, 4 Raw)");
  add->add_option("--partarch", a.partarch, "partition architecture (1 386, 2 amd64, ...)");
  add->add_option("--signhash", a.signhash, "signature hash (1 SHA256 ... 5 BLAKE2b_256)");
  add->add_option("--signentity", a.signentity, "signing key fingerprint (40 hex digits)");
  add->add_option("--sbomformat", a.sbomformat, "SBOM format (cyclonedx-json, spdx-json, ...)");
  add->add_option("--groupid", a.groupid, "object group [default: none]");
  add->add_option("--link,--linkid", a.link, "linked object ID [default: none]");
  auto* align = add->add_option("--alignment", a.alignment,
                                "alignment [default: 4096 for partitions, none otherwise]");
  auto* filename = add->add_option("--filename", a.filename, "object name [default: none]");
  add->callback([st, result, align, filename] {
    *result = RunAdd(st->add, align->count() > 0, filename->count() > 0);
  });

  auto* del = sif->add_subcommand("del", "Delete data object");
  AddIdArgument(del, &st->id);
  del->add_option("sif_path", st->path)->required();
  del->add_flag("--zero", st->zero, "overwrite the object's data with zeros");
  del->add_flag("--compact", st->compact, "free the space (only for the last object)");
  del->callback([st, result] {
    auto image = Load(st->path, sif::OpenMode::kReadWrite);
    if (!image.ok()) return void(*result = image.status());
    *result = image->DeleteObject(st->id, {.zero = st->zero, .compact = st->compact});
  });

  auto* setprim = sif->add_subcommand("setprim", "Set primary system partition");
  AddIdArgument(setprim, &st->id);
  setprim->add_option("sif_path", st->path)->required();
  setprim->callback([st, result] {
    auto image = Load(st->path, sif::OpenMode::kReadWrite);
    if (!image.ok()) return void(*result = image.status());
    *result = image->SetPrimaryPartition(st->id);
  });
}

}  // namespace berth::client
