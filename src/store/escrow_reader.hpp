// A read-only view of the escrow tables for the key-holder process (docs/design.md, "Process
// model"): it checks a portal's unwrap request against the message and the session as stored,
// without the queue, the spool or the group-commit writer, and with a connection that cannot write.
#pragma once

#include <memory>
#include <string>

#include "common/result.hpp"
#include "store/escrow_store.hpp"

namespace mailward::config {
struct Config;
}

namespace mailward::store {

class EscrowReader {
  public:
    virtual ~EscrowReader() = default;
    virtual Result<EscrowRecord> get(const std::string& id) = 0;            // not_found if absent
    virtual Result<EscrowSession> session(const std::string& id_hash) = 0;  // not_found if absent
};

// Opens the backend named by [store] backend read-only. The store must exist (serve has opened
// and migrated it first); nothing is created.
Result<std::unique_ptr<EscrowReader>> open_escrow_reader(const config::Config& cfg);

}  // namespace mailward::store
