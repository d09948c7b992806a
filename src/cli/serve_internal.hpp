// The pieces of `mailward serve` shared by its processes (docs/design.md, "Process model"): what
// the parent hands each child it forks, the escrow settings both the parent (sealer, sweeper) and
// the portal process use, and the entry points of the portal (serve_portal.cpp) and submission
// (serve_smtp.cpp) processes. serve.cpp composes them.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/privilege.hpp"
#include "config/config.hpp"
#include "escrow/service.hpp"

namespace mailward::cli {

// What a child gets from serve: the config, the user to become once its listeners are bound
// (nullopt when serve was not started as root), and the write end of its wake pipe (one byte per
// message it queued: the parent kicks the delivery engine).
struct ChildContext {
    const config::Config& cfg;
    std::optional<common::SystemUser> user;
    int wake_fd = -1;
    std::string name;  // the process name: mailward-portal, mailward-smtp
};

inline constexpr const char* kPortalProcess = "mailward-portal";
inline constexpr const char* kSubmissionProcess = "mailward-smtp";

// [escrow] and [portal] as the escrow service's settings.
escrow::ServiceSettings escrow_service_settings(const config::Config& cfg);

// Runs io on n threads (the calling one included) until it stops.
void run_io(boost::asio::io_context& io);

// The part of a child that follows the binding of its listeners: drop to ctx.user (if any), then
// say so. Returns false (logged) when the drop failed: the child must exit.
bool drop_in_child(const ChildContext& ctx);

// The portal process: opens the store as store::Role::portal, connects to the key holder over
// key_fd (its own socketpair), serves [escrow] listen until SIGTERM. Returns the exit status.
int run_portal_process(const ChildContext& ctx, std::shared_ptr<boost::asio::ssl::context> tls, int key_fd);

// The submission process: opens the store as store::Role::submission and serves [submission]
// listen and tls_listen until SIGTERM. Returns the exit status.
int run_submission_process(const ChildContext& ctx, std::shared_ptr<boost::asio::ssl::context> tls);

}  // namespace mailward::cli
