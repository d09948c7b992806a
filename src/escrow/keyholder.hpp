// Privilege separation around the master key (docs/design.md, "Process model"; OpenSMTPD's "CA"
// process is the model). serve forks the key holder before it drops root: the only process that
// opens the master key file. It answers key_id, wrap, mac (for the purposes escrow uses) and
// unwrap over a SOCK_SEQPACKET socketpair (keyholder_wire.hpp), and unwraps a message's key only
// for a live portal session of that message, checked in the store through a read-only connection.
// RemoteKeyHolder is the KeyHolder the other processes use; requests from them are untrusted.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/privilege.hpp"
#include "common/result.hpp"
#include "escrow/keys.hpp"
#include "store/escrow_reader.hpp"

namespace mailward::escrow {

using ReaderFactory = std::function<Result<std::unique_ptr<store::EscrowReader>>()>;

// The session limits the key holder checks an unwrap against (EscrowService's own,
// ServiceSettings).
struct SessionLimits {
    std::chrono::seconds idle{15 * 60};
    std::chrono::seconds max{8 * 3600};
};

// The key holder's decisions, one request at a time: a request's bytes in, a response's bytes out.
// No I/O but the store reads; used by the key-holder process and by tests directly.
class KeyHolderService {
  public:
    // open_reader is called at the first unwrap (the store exists by then) and kept.
    KeyHolderService(const KeyHolder& keys, ReaderFactory open_reader, SessionLimits limits);
    std::string handle(std::string_view request, std::chrono::system_clock::time_point now);

  private:
    Result<SecretBytes> unwrap(const UnwrapGrant& grant, std::string_view wrapped, std::string_view aad,
                               std::chrono::system_clock::time_point now);

    const KeyHolder& keys_;
    ReaderFactory open_reader_;
    std::unique_ptr<store::EscrowReader> reader_;
    SessionLimits limits_;
};

struct KeyHolderSettings {
    std::filesystem::path master_key_file;
    std::optional<common::SystemUser> drop_to;  // started as root: the user it becomes once it holds the key
    SessionLimits limits;
    ReaderFactory open_reader;
    // Clients beyond serve's own: one socketpair each (serve hands them to its children, e.g. the
    // portal process, so that no process shares another's connection).
    int extra_clients = 0;
};

struct KeyHolderProcess {
    pid_t pid = -1;
    int fd = -1;             // the parent's end of the socketpair
    std::vector<int> extra;  // the parent's ends of the extra clients' socketpairs
};

// Forks the key holder; returns in the parent only. Call it while the process has one thread (the
// child runs on without exec). The child creates the master key file on first start (0600), reads
// it, drops to settings.drop_to, announces its key id (or the one line saying why it could not) on
// every client socket and serves them all, one request at a time, until the parent closes its end
// (fd) or dies (PR_SET_PDEATHSIG); an extra client closing its end is only dropped.
Result<KeyHolderProcess> spawn_key_holder(const KeyHolderSettings& settings);

class RemoteKeyHolder final : public KeyHolder {
  public:
    // Takes fd and waits up to timeout for the key holder's first message.
    static KeyFileResult<std::unique_ptr<RemoteKeyHolder>> connect(int fd, std::chrono::milliseconds timeout);
    ~RemoteKeyHolder() override;  // closes the socket: the key holder exits
    RemoteKeyHolder(const RemoteKeyHolder&) = delete;
    RemoteKeyHolder& operator=(const RemoteKeyHolder&) = delete;

    KeyId key_id() const override { return key_id_; }
    Result<std::string> wrap(std::string_view secret, std::string_view aad) const override;
    // Refused: the key holder opens keys only for a portal session (unwrap_for).
    Result<SecretBytes> unwrap(std::string_view wrapped, std::string_view aad) const override;
    Result<SecretBytes> unwrap_for(const UnwrapGrant& grant, std::string_view wrapped,
                                   std::string_view aad) const override;
    // The key holder not answering (dead, or silent for the reply timeout) ends the process with
    // exit status 1 after one log line: no call returns a wrong hash, and none hangs.
    std::string mac_hex(std::string_view purpose, std::string_view data) const override;

  private:
    RemoteKeyHolder(int fd, const KeyId& id) : fd_(fd), key_id_(id) {}
    // One request at a time; the reply's payload, or the key holder's error status.
    Result<std::string> call(int op, std::initializer_list<std::string_view> fields) const;

    int fd_;
    KeyId key_id_;
    mutable std::mutex mu_;
};

}  // namespace mailward::escrow
