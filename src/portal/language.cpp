// Accept-Language (see language.hpp). Grammar, RFC 9110 12.5.4 and 12.4.2:
//   Accept-Language = #( language-range [ weight ] )
//   language-range  = ( 1*8ALPHA *( "-" 1*8alphanum ) ) / "*"
//   weight = OWS ";" OWS "q=" qvalue ; qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
#include "portal/language.hpp"

#include "common/ascii.hpp"

namespace mailward::portal {
namespace {

bool alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool digit(char c) { return c >= '0' && c <= '9'; }

bool language_range(std::string_view r) {
    if (r == "*") return true;
    std::size_t i = 0;
    bool first = true;
    while (true) {
        std::size_t n = 0;
        while (i < r.size() && r[i] != '-') {
            if (!(alpha(r[i]) || (!first && digit(r[i])))) return false;
            ++i;
            ++n;
        }
        if (n < 1 || n > 8) return false;
        if (i == r.size()) return true;
        ++i;  // '-'
        first = false;
    }
}

std::optional<int> qvalue(std::string_view v) {
    if (v.empty() || v.size() > 5) return std::nullopt;
    if (v.size() > 1 && v[1] != '.') return std::nullopt;
    if (v[0] != '0' && v[0] != '1') return std::nullopt;
    int q = (v[0] - '0') * 1000;
    int scale = 100;
    for (std::size_t i = 2; i < v.size(); ++i, scale /= 10) {
        if (!digit(v[i])) return std::nullopt;
        q += (v[i] - '0') * scale;
    }
    if (q > 1000) return std::nullopt;
    return q;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

}  // namespace

std::optional<std::vector<LanguageRange>> parse_accept_language(std::string_view header) {
    if (header.size() > 4096) return std::nullopt;
    std::vector<LanguageRange> out;
    while (true) {
        const auto comma = header.find(',');
        std::string_view element = common::ascii::trim_wsp(header.substr(0, comma));
        if (!element.empty()) {  // #rule: empty list elements are allowed and ignored
            const auto semi = element.find(';');
            const auto range = common::ascii::trim_wsp(element.substr(0, semi));
            if (!language_range(range)) return std::nullopt;
            LanguageRange lr{lower(range), 1000};
            if (semi != std::string_view::npos) {
                auto weight = common::ascii::trim_wsp(element.substr(semi + 1));
                if (weight.size() < 2 || (weight[0] != 'q' && weight[0] != 'Q') || weight[1] != '=')
                    return std::nullopt;
                auto q = qvalue(weight.substr(2));
                if (!q) return std::nullopt;
                lr.q = *q;
            }
            out.push_back(std::move(lr));
        }
        if (comma == std::string_view::npos) break;
        header.remove_prefix(comma + 1);
    }
    return out;
}

escrow::Lang choose_language(std::optional<std::string_view> header) {
    if (!header) return escrow::Lang::en;
    auto ranges = parse_accept_language(*header);
    if (!ranges) return escrow::Lang::en;
    struct Weight {
        int q = -1;                   // -1: no range names it
        std::size_t specificity = 0;  // 0 "*", 1 a longer range's prefix ("de-de"), 2 the tag itself
        std::size_t position = 0;     // the range's place in the header
    };
    std::optional<escrow::Lang> best;
    Weight best_w;
    for (escrow::Lang l : escrow::kLanguages) {
        const std::string_view t = escrow::tag(l);
        Weight w;
        for (std::size_t i = 0; i < ranges->size(); ++i) {
            const auto& r = (*ranges)[i];
            std::size_t spec = 0;
            if (r.range == t) spec = 2;
            else if (r.range.size() > t.size() && r.range.starts_with(t) && r.range[t.size()] == '-') spec = 1;
            else if (r.range == "*") spec = 0;
            else continue;
            if (w.q < 0 || spec > w.specificity || (spec == w.specificity && r.q > w.q)) w = {r.q, spec, i};
        }
        if (w.q <= 0) continue;  // not named, or excluded by q=0
        if (!best || w.q > best_w.q || (w.q == best_w.q && w.position < best_w.position)) {
            best = l;
            best_w = w;
        }
    }
    return best.value_or(escrow::Lang::en);
}

}  // namespace mailward::portal
