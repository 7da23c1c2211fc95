#include "deffile/definition.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "deffile/go_text.h"

namespace berth::deffile {

void Header::Set(std::string key, std::string value, int line) {
  auto [it, inserted] = index_.try_emplace(key, entries_.size());
  if (inserted) {
    entries_.push_back({std::move(key), std::move(value), line});
    return;
  }
  entries_[it->second].value = std::move(value);
  entries_[it->second].line = line;
}

const HeaderEntry* Header::Find(absl::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

absl::string_view Header::Get(absl::string_view key) const {
  const HeaderEntry* e = Find(key);
  return e == nullptr ? absl::string_view() : absl::string_view(e->value);
}

const std::string* App::Find(absl::string_view section) const {
  auto it = sections.find(std::string(section));
  return it == sections.end() ? nullptr : &it->second;
}

std::vector<std::string> Definition::Fingerprints() const {
  absl::string_view value = header.Get("fingerprints");
  value = internal::TrimSpace(value.substr(0, value.find('#')));
  std::vector<std::string> out;
  if (value.empty()) return out;
  for (absl::string_view fp : absl::StrSplit(value, ',')) {
    out.emplace_back(internal::TrimSpace(fp));
  }
  return out;
}

std::vector<std::string> Definition::OtherUrls() const {
  std::vector<std::pair<absl::string_view, const HeaderEntry*>> numbered;
  for (const HeaderEntry& e : header.entries()) {
    absl::string_view key = e.key;
    if (!absl::ConsumePrefix(&key, "otherurl") || key.empty()) continue;
    if (!std::all_of(key.begin(), key.end(), absl::ascii_isdigit)) continue;
    numbered.emplace_back(key, &e);
  }
  // By number: shorter digit strings first (leading zeros aside), then text.
  auto by_number = [](const auto& a, const auto& b) {
    absl::string_view x = a.first, y = b.first;
    while (x.size() > 1 && x.front() == '0') x.remove_prefix(1);
    while (y.size() > 1 && y.front() == '0') y.remove_prefix(1);
    return x.size() != y.size() ? x.size() < y.size() : x < y;
  };
  std::stable_sort(numbered.begin(), numbered.end(), by_number);
  std::vector<std::string> out;
  for (const auto& [number, entry] : numbered) out.push_back(entry->value);
  return out;
}

Script* Definition::MutableScript(absl::string_view section) {
  static constexpr std::pair<absl::string_view, Script Definition::*> kScripts[] = {
      {"help", &Definition::help},
      {"environment", &Definition::environment},
      {"runscript", &Definition::runscript},
      {"test", &Definition::test},
      {"startscript", &Definition::startscript},
      {"pre", &Definition::pre},
      {"setup", &Definition::setup},
      {"post", &Definition::post},
      {"arguments", &Definition::arguments},
  };
  for (const auto& [name, member] : kScripts) {
    if (name == section) return &(this->*member);
  }
  return nullptr;
}

const Script* Definition::FindScript(absl::string_view section) const {
  return const_cast<Definition*>(this)->MutableScript(section);
}

const App* Definition::FindApp(absl::string_view name) const {
  for (const App& app : apps) {
    if (app.name == name) return &app;
  }
  return nullptr;
}

}  // namespace berth::deffile
