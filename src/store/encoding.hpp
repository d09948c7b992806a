// The encodings of envelope fields as stored, shared by the SQLite and PostgreSQL backends (and
// nobody else): times, body type, RET, recipient state, the domain of an address.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace mailward::store::detail {

std::int64_t to_ms(TimePoint t);  // stored times are milliseconds since the epoch
TimePoint from_ms(std::int64_t ms);
std::string_view encode(BodyType t);
std::optional<BodyType> decode_body_type(std::string_view s);
std::string_view encode(DsnRet r);
std::optional<DsnRet> decode_ret(std::string_view s);
std::optional<RcptState> decode_state(std::string_view s);  // the inverse of to_string(RcptState)
// The part after the last '@', ASCII letters lower-cased ("" when there is no '@', e.g.
// Postmaster).
std::string domain_of(std::string_view address);

}  // namespace mailward::store::detail
