// The portal's connection limits, as plain logic (no sockets): which key a client address counts
// under (an IPv4 address; an IPv6 address by its /64, RFC 4291 section 2.5.4, since one host or
// home network gets a whole /64), and how many connections each key and all keys together may hold.
// Over the per-address limit a few connections are answered 429 (so a browser shows why); past
// that, and past the total, they are closed at once without any TLS work, unless a connection
// that only waits (see open()) can make room for them. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace mailward::portal {

// "192.0.2.1" -> "192.0.2.1"; "::ffff:192.0.2.1" -> "192.0.2.1"; "2001:db8:1:2:3::4" ->
// "2001:db8:1:2::/64". nullopt for anything that is not an IP literal.
std::optional<std::string> address_key(std::string_view ip);

struct ConnectionRules {
    std::size_t total = 1000;              // connections served at once, every address together
    std::size_t per_address = 16;          // connections served at once per address_key
    std::size_t refusals_per_address = 2;  // 429 answers in progress per key; more are closed
    std::size_t refusals_total = 32;       // 429 answers in progress in all
};

enum class ConnectionVerdict {
    serve,   // counted; release() when it ends
    refuse,  // over the key's limit: answer 429 and close; counted as a refusal, release() it
    drop,    // close at once; nothing counted
};

class ConnectionLimiter {
  public:
    explicit ConnectionLimiter(ConnectionRules rules) : rules_(rules) {}
    ConnectionVerdict admit(const std::string& key);
    // Ends what admit() counted (serve or refuse; drop counted nothing).
    void release(const std::string& key, ConnectionVerdict verdict);
    std::size_t served() const;
    std::size_t served(const std::string& key) const;

    // As admit(), for connections that may be closed to make room. When the table is full, a
    // newcomer takes the place of a connection that waits (for its TLS handshake or a request's
    // header, or idles between requests) from the key holding the most connections, if that key
    // holds at least two more than the newcomer's (so keys cannot push each other out in turn);
    // the longest-waiting of them goes. Its place is the newcomer's at once; the caller closes it
    // (victim). A connection reading or answering a request is never chosen. Served connections
    // get an id for waiting() and close(). now: any monotonic clock, for "longest".
    struct Opened {
        ConnectionVerdict verdict = ConnectionVerdict::drop;
        std::uint64_t id = 0;      // serve: this connection's id
        std::uint64_t victim = 0;  // nonzero: close that connection (its place is taken)
    };
    Opened open(const std::string& key, std::int64_t now);
    // Whether connection id is waiting (since now) or busy with a request.
    void waiting(std::uint64_t id, bool waiting, std::int64_t now);
    // Connection id (served by open()) ended: its place is free, unless a newcomer took it.
    void close(std::uint64_t id);

  private:
    struct Counts {
        std::size_t served = 0;
        std::size_t refusing = 0;
    };
    struct Tracked {
        std::string key;
        bool waiting = true;  // a new connection waits for its handshake
        std::int64_t since = 0;
        bool replaced = false;  // its place went to a newcomer
    };
    std::uint64_t pick_victim(std::size_t mine) const;  // mutex_ held; 0: none
    void give_back(const std::string& key);             // mutex_ held: one served place of key

    ConnectionRules rules_;
    mutable std::mutex mutex_;
    std::map<std::string, Counts, std::less<>> by_key_;  // only keys with something open
    std::size_t served_ = 0;
    std::size_t refusing_ = 0;
    std::map<std::uint64_t, Tracked> tracked_;  // open()'s served connections
    std::uint64_t next_id_ = 0;
};

}  // namespace mailward::portal
