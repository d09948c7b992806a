// libFuzzer target for MTA-STS (RFC 8461): the TXT record at _mta-sts.<domain> (section 3.1), the
// policy file (section 3.2) and the mx pattern match (section 4.1), as a hostile domain serves them.
// Invariants: an accepted record has an id of 1-32 letters and digits; an accepted policy has a
// known mode, max_age within the RFC's bound, mx patterns in lower case without a trailing dot and
// at least one unless mode is none; a wildcard matches exactly one more label; nothing crashes.
#include <string>
#include <vector>

#include "fuzz_common.hpp"
#include "policy/mta_sts.hpp"
#include "policy/mx_hosts.hpp"

using namespace mailward;

namespace {

void check_policy(const policy::MtaStsPolicy& p) {
    fuzz::check(p.max_age.count() >= 0 && p.max_age.count() <= 31557600, "max_age within RFC 8461 bound");
    fuzz::check(p.mode == policy::MtaStsPolicy::Mode::none || !p.mx.empty(), "mx present unless mode none");
    for (const auto& m : p.mx) {
        fuzz::check(!m.empty() && m.back() != '.', "mx pattern without trailing dot");
        for (char c : m) fuzz::check(!(c >= 'A' && c <= 'Z'), "mx pattern in lower case");
        // A pattern matches the host it names (a wildcard: one more label in front).
        const std::string host = m.rfind("*.", 0) == 0 ? "a" + m.substr(1) : m;
        fuzz::check(policy::mx_allowed(p, host), "a policy allows the host its pattern names");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    // The TXT strings: one per line.
    std::vector<std::string> texts;
    for (std::size_t pos = 0; pos <= text.size();) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string_view::npos) eol = text.size();
        texts.emplace_back(text.substr(pos, eol - pos));
        pos = eol + 1;
    }
    std::string detail;
    if (auto r = policy::parse_mta_sts_record(texts, detail)) {
        fuzz::check(!r->id.empty() && r->id.size() <= 32, "record id length");
        for (char c : r->id)
            fuzz::check((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'),
                        "record id is letters and digits");
    } else {
        fuzz::check(!detail.empty(), "a refused record says why");
    }

    detail.clear();
    if (auto p = policy::parse_mta_sts_policy(text, detail)) {
        check_policy(*p);
    } else {
        fuzz::check(!detail.empty(), "a refused policy says why");
    }

    // Pattern matching: the first line is the pattern, the second the host.
    if (texts.size() >= 2) {
        std::string pattern = texts[0];
        std::string host = texts[1];
        const bool match = policy::mx_pattern_matches(pattern, host);
        // A final dot (the fully qualified form) names the same thing: "*." is the name "*".
        if (pattern.ends_with('.')) pattern.pop_back();
        if (host.ends_with('.')) host.pop_back();
        if (match && pattern.starts_with("*.")) {
            const auto dot = host.find('.');
            fuzz::check(dot != std::string::npos && dot > 0, "a wildcard stands for one non-empty label");
        }
    }
    return 0;
}
