// The client network a submission client is counted under for connection limits, AUTH failure
// throttling and stress eviction: its address cut to a prefix (default /32 for IPv4, /64 for
// IPv6, the size one IPv6 subscriber usually holds, RFC 6177), written "2001:db8:1:2::/64".
// An IPv4-mapped IPv6 address is counted as the IPv4 address. Pure; no Asio.
#pragma once

#include <string>
#include <string_view>

namespace mailward::server {

// ip: an IP literal as the accept loop writes it. Returns "" when ip is not one.
std::string client_network(std::string_view ip, unsigned ipv4_prefix, unsigned ipv6_prefix);

}  // namespace mailward::server
