#include "client/clidoc/man_page.h"

#include <fcntl.h>

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/file_io.h"
#include "common/status_macros.h"

namespace berth::client::clidoc {
namespace {

// Text in a troff line: backslashes and hyphens escaped, and a line that
// would start with a control character made literal.
std::string Escape(const std::string& text) {
  std::string out = absl::StrReplaceAll(text, {{"\\", "\\e"}, {"-", "\\-"}});
  if (!out.empty() && (out.front() == '.' || out.front() == '\'')) out.insert(0, "\\&");
  return out;
}

// A description as a sentence: capitalised, ending with a full stop.
std::string Sentence(const std::string& text) {
  if (text.empty()) return text;
  std::string out = text;
  out.front() = absl::ascii_toupper(out.front());
  if (out.back() != '.') out.push_back('.');
  return out;
}

std::string Synopsis(const CommandDoc& cmd) {
  std::string out = absl::StrCat(".SH SYNOPSIS\n.B ", Escape(cmd.Name()), "\n");
  if (!cmd.options.empty()) out += "[\\fIoptions\\fR]\n";
  if (!cmd.subcommands.empty()) out += "\\fIcommand\\fR\n";
  for (const PositionalDoc& pos : cmd.positionals) {
    std::string word = absl::StrCat("\\fI", Escape(pos.name), "\\fR", pos.repeated ? "..." : "");
    absl::StrAppend(&out, pos.required ? word : absl::StrCat("[", word, "]"), "\n");
  }
  return out;
}

std::string OptionTag(const OptionDoc& opt) {
  std::vector<std::string> names;
  for (const std::string& s : opt.short_names) names.push_back(absl::StrCat("\\fB\\-", s, "\\fR"));
  for (const std::string& l : opt.long_names) {
    names.push_back(absl::StrCat("\\fB\\-\\-", Escape(l), "\\fR"));
  }
  std::string tag = absl::StrJoin(names, ", ");
  if (!opt.value_name.empty()) absl::StrAppend(&tag, " \\fI", Escape(opt.value_name), "\\fR");
  return tag;
}

std::string Options(const CommandDoc& cmd) {
  std::string out;
  if (!cmd.positionals.empty()) out += ".SH ARGUMENTS\n";
  for (const PositionalDoc& pos : cmd.positionals) {
    absl::StrAppend(&out, ".TP\n\\fI", Escape(pos.name), "\\fR\n",
                    Escape(Sentence(pos.description)), "\n");
  }
  if (!cmd.options.empty()) out += ".SH OPTIONS\n";
  for (const OptionDoc& opt : cmd.options) {
    absl::StrAppend(&out, ".TP\n", OptionTag(opt), "\n", Escape(Sentence(opt.description)), "\n");
  }
  return out;
}

std::string Commands(const CommandDoc& cmd) {
  if (cmd.subcommands.empty()) return "";
  std::string out = ".SH COMMANDS\n";
  for (const CommandDoc& sub : cmd.subcommands) {
    absl::StrAppend(&out, ".TP\n\\fB", Escape(sub.path.back()), "\\fR\n",
                    Escape(Sentence(sub.description)), " See \\fB", Escape(sub.Name("-")),
                    "\\fR(1).\n");
  }
  return out;
}

std::string SeeAlso(const CommandDoc& cmd) {
  if (cmd.path.size() == 1) return "";
  std::vector<std::string> parent(cmd.path.begin(), cmd.path.end() - 1);
  return absl::StrCat(".SH SEE ALSO\n\\fB", Escape(absl::StrJoin(parent, "-")), "\\fR(1)\n");
}

}  // namespace

std::string ManPageName(const CommandDoc& cmd) {
  return cmd.Name("-") + ".1";
}

std::string ManPage(const CommandDoc& cmd, const std::string& version) {
  std::string title = absl::AsciiStrToUpper(cmd.Name("-"));
  return absl::StrCat(".TH ", Escape(title), " 1 \"\" \"berth ", Escape(version),
                      "\" \"berth manual\"\n.SH NAME\n", Escape(cmd.Name("-")), " \\- ",
                      Escape(cmd.description), "\n", Synopsis(cmd), ".SH DESCRIPTION\n",
                      Escape(Sentence(cmd.description)), "\n", Commands(cmd), Options(cmd),
                      SeeAlso(cmd));
}

absl::Status WriteManPages(const CommandDoc& root, const std::string& dir,
                           const std::string& version) {
  for (const CommandDoc* cmd : Flatten(root)) {
    std::string path = absl::StrCat(dir, "/", ManPageName(*cmd));
    std::string page = ManPage(*cmd, version);
    ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    RETURN_IF_ERROR_CTX(
        WriteAll(fd.get(), {reinterpret_cast<const uint8_t*>(page.data()), page.size()}),
        absl::StrCat("writing ", path));
  }
  return absl::OkStatus();
}

}  // namespace berth::client::clidoc
