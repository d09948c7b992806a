// The encodings of envelope fields as both backends store them (sqlite/migrations.cpp and
// postgres/migrations.cpp have the CHECK constraints they must satisfy): times as milliseconds since
// the epoch, body type and RET as short texts, recipient states by their to_string names.
#include "store/encoding.hpp"

namespace mailward::store::detail {

std::int64_t to_ms(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

TimePoint from_ms(std::int64_t ms) {
    return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::milliseconds(ms)));
}

std::string_view encode(BodyType t) {
    switch (t) {
        case BodyType::seven_bit: return "7bit";
        case BodyType::eight_bit_mime: return "8bitmime";
        case BodyType::binary_mime: return "binarymime";
    }
    return "7bit";
}

std::optional<BodyType> decode_body_type(std::string_view s) {
    if (s == "7bit") return BodyType::seven_bit;
    if (s == "8bitmime") return BodyType::eight_bit_mime;
    if (s == "binarymime") return BodyType::binary_mime;
    return std::nullopt;
}

std::string_view encode(DsnRet r) {
    switch (r) {
        case DsnRet::unspecified: return "";
        case DsnRet::full: return "full";
        case DsnRet::hdrs: return "hdrs";
    }
    return "";
}

std::optional<DsnRet> decode_ret(std::string_view s) {
    if (s.empty()) return DsnRet::unspecified;
    if (s == "full") return DsnRet::full;
    if (s == "hdrs") return DsnRet::hdrs;
    return std::nullopt;
}

std::optional<RcptState> decode_state(std::string_view s) {
    for (auto st : {RcptState::queued, RcptState::delivered, RcptState::failed, RcptState::awaiting_escrow,
                    RcptState::escrowed, RcptState::deleted})
        if (to_string(st) == s) return st;
    return std::nullopt;
}

std::string domain_of(std::string_view address) {
    auto at = address.rfind('@');
    if (at == std::string_view::npos) return {};
    std::string d(address.substr(at + 1));
    for (auto& c : d)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return d;
}

}  // namespace mailward::store::detail
