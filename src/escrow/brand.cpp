// The brand and the text tables' dispatch (see brand.hpp).
#include "escrow/brand.hpp"

namespace mailward::escrow {
namespace detail {
extern const Texts kEnglish;
extern const Texts kGerman;
}  // namespace detail

std::string_view tag(Lang l) { return l == Lang::de ? "de" : "en"; }

std::optional<Lang> language_of(std::string_view t) {
    auto is = [t](std::string_view want) {
        if (t.size() != want.size()) return false;
        for (std::size_t i = 0; i < t.size(); ++i)
            if ((t[i] | 0x20) != want[i]) return false;
        return true;
    };
    for (Lang l : kLanguages)
        if (is(tag(l))) return l;
    return std::nullopt;
}

const Texts& texts(Lang l) { return l == Lang::de ? detail::kGerman : detail::kEnglish; }

std::string support_href(std::string_view contact) {
    if (contact.empty()) return {};
    if (contact.starts_with("https://")) return std::string(contact);
    return "mailto:" + std::string(contact);
}

std::string header_phrase(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) continue;
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

std::string fill(std::string_view text, std::initializer_list<std::pair<std::string_view, std::string_view>> args) {
    std::string out;
    out.reserve(text.size() + 64);
    for (std::size_t i = 0; i < text.size();) {
        if (text[i] == '{') {
            const auto close = text.find('}', i);
            if (close != std::string_view::npos) {
                const auto name = text.substr(i + 1, close - i - 1);
                bool done = false;
                for (const auto& [k, v] : args)
                    if (k == name) {
                        out += v;
                        done = true;
                        break;
                    }
                if (done) {
                    i = close + 1;
                    continue;
                }
            }
        }
        out += text[i++];
    }
    return out;
}

}  // namespace mailward::escrow
