// See metrics.hpp. A mutex-guarded map is enough: counters change per delivery attempt, not per byte.
#include "common/metrics.hpp"

#include "common/gcc_wrestrict.hpp"

#include <map>
#include <mutex>

namespace mailward::common::metrics {
namespace {

struct Family {
    std::string help;
    std::map<std::string, std::uint64_t> series;  // rendered label set ("" or {k="v"}) -> value
};

std::mutex& mu() {
    static std::mutex m;
    return m;
}
std::map<std::string, Family, std::less<>>& families() {
    static std::map<std::string, Family, std::less<>> f;
    return f;
}

std::string label_set(std::string_view label, std::string_view value) {
    if (label.empty()) return {};
    MAILWARD_GCC_WRESTRICT_OFF  // GCC bug 105651: "{" + a temporary string
    std::string out = "{" + std::string(label) + "=\"";
    MAILWARD_GCC_WRESTRICT_ON
    for (char c : value) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out + "\"}";
}

}  // namespace

void inc(std::string_view name, std::string_view help, std::string_view label, std::string_view value,
         std::uint64_t n) {
    std::lock_guard lk(mu());
    auto& fams = families();
    auto it = fams.find(name);
    if (it == fams.end()) it = fams.emplace(std::string(name), Family{std::string(help), {}}).first;
    it->second.series[label_set(label, value)] += n;
}

std::uint64_t value(std::string_view name, std::string_view label, std::string_view v) {
    std::lock_guard lk(mu());
    auto& fams = families();
    auto it = fams.find(name);
    if (it == fams.end()) return 0;
    auto s = it->second.series.find(label_set(label, v));
    return s == it->second.series.end() ? 0 : s->second;
}

std::string render() {
    std::lock_guard lk(mu());
    std::string out;
    for (const auto& [name, fam] : families()) {
        out += "# HELP " + name + " " + fam.help + "\n# TYPE " + name + " counter\n";
        for (const auto& [labels, v] : fam.series) out += name + labels + " " + std::to_string(v) + "\n";
    }
    return out;
}

}  // namespace mailward::common::metrics
