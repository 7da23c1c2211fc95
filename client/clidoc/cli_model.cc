#include "client/clidoc/cli_model.h"

#include <utility>

#include "absl/strings/str_join.h"

namespace berth::client::clidoc {
namespace {

bool IsHidden(const std::string& group) {
  return group.empty();
}

OptionDoc DescribeOption(const CLI::Option& opt) {
  OptionDoc doc;
  doc.short_names = opt.get_snames();
  doc.long_names = opt.get_lnames();
  if (opt.get_expected_max() > 0) {
    doc.value_name = opt.get_type_name().empty() ? "VALUE" : opt.get_type_name();
  }
  doc.description = opt.get_description();
  return doc;
}

PositionalDoc DescribePositional(const CLI::Option& opt) {
  PositionalDoc doc;
  doc.name = opt.get_name();
  doc.description = opt.get_description();
  doc.required = opt.get_required();
  doc.repeated = opt.get_items_expected_max() > 1;
  return doc;
}

// Options of `app` and of its unnamed option groups (CLI11 keeps those as
// nameless subcommands).
void AddOptions(const CLI::App& app, CommandDoc& doc) {
  for (const CLI::Option* opt : app.get_options()) {
    if (IsHidden(opt->get_group())) continue;
    if (opt->nonpositional()) {
      doc.options.push_back(DescribeOption(*opt));
    } else {
      doc.positionals.push_back(DescribePositional(*opt));
    }
  }
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name().empty()) AddOptions(*sub, doc);
  }
}

}  // namespace

std::string CommandDoc::Name(const char* separator) const {
  return absl::StrJoin(path, separator);
}

CommandDoc DescribeCommand(const CLI::App& app, std::vector<std::string> parent_path) {
  CommandDoc doc;
  doc.path = std::move(parent_path);
  // The root's name is argv[0] once parsed; the tree is `berth`'s wherever it lives.
  doc.path.push_back(doc.path.empty() ? "berth" : app.get_name());
  doc.description = app.get_description();
  AddOptions(app, doc);
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name().empty() || IsHidden(sub->get_group())) continue;
    doc.subcommands.push_back(DescribeCommand(*sub, doc.path));
  }
  return doc;
}

std::vector<const CommandDoc*> Flatten(const CommandDoc& root) {
  std::vector<const CommandDoc*> out = {&root};
  for (const CommandDoc& sub : root.subcommands) {
    std::vector<const CommandDoc*> below = Flatten(sub);
    out.insert(out.end(), below.begin(), below.end());
  }
  return out;
}

}  // namespace berth::client::clidoc
