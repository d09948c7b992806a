// Looks into the header section (RFC 5322 2.2, 3.6) of a message as received at the end of DATA,
// for the checks made there: the hop count (Received: fields, RFC 5321 6.3 loop detection) and the
// From: addresses that sender binding checks. The message is untrusted; folded fields, comments,
// quoted strings, display names and groups are handled; nothing here allocates per body octet.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace mailward::server {

// Header fields named Received (any case) before the first empty line.
std::size_t count_received(std::string_view message);

struct FromAddresses {
    std::vector<std::string> addresses;  // addr-specs of every mailbox in every From: field
    bool malformed = false;              // a From: field with a mailbox we cannot read
};
FromAddresses from_addresses(std::string_view message);

// The addr-specs of every mailbox in every field named one of names (lower case), e.g. {"to",
// "cc", "bcc"} for `sendmail -t`. An empty group ("undisclosed-recipients:;") names none and is fine.
using HeaderAddresses = FromAddresses;
HeaderAddresses field_addresses(std::string_view message, std::initializer_list<std::string_view> names);

}  // namespace mailward::server
