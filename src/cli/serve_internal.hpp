// The pieces of `mailward serve` shared by its processes (docs/design.md, "Process model"): what
// the parent hands each child it forks, the escrow settings both the parent (sealer, sweeper) and
// the portal process use, and the entry points of the portal (serve_portal.cpp) and submission
// (serve_smtp.cpp) processes. serve.cpp composes them.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/privilege.hpp"
#include "config/config.hpp"
#include "escrow/service.hpp"

namespace mailward::cli {

// What a child gets from serve: the config, the user to become once its listeners are bound
// (nullopt when serve was not started as root), and the write end of its wake pipe (one byte per
// message it queued: the parent kicks the delivery engine; kReadyByte once it listens,
// kReloadedByte after each SIGHUP it handled).
struct ChildContext {
    const config::Config& cfg;
    std::optional<common::SystemUser> user;
    int wake_fd = -1;
    std::string name;  // the process name: mailward-portal, mailward-smtp
};

inline constexpr const char* kPortalProcess = "mailward-portal";
inline constexpr const char* kSubmissionProcess = "mailward-smtp";

// Bytes a child writes on its wake pipe besides common::wake()'s (any other byte is a wake-up).
inline constexpr char kReadyByte = 'R';     // every listener of the child listens
inline constexpr char kReloadedByte = 'H';  // a SIGHUP was handled (reloaded, or refused: logged)
// Writes one of the bytes above (retrying a moment while the pipe is full of wake-ups).
void tell_parent(int wake_fd, char byte);

// The certificate and key each listener serves: the submission's ([submission] cert/key, else the
// self-signed pair serve makes in data_dir/tls) and the portal's ([escrow] cert/key, else the
// submission's).
std::pair<std::filesystem::path, std::filesystem::path> submission_cert_files(const config::Config& cfg);
std::pair<std::filesystem::path, std::filesystem::path> portal_cert_files(const config::Config& cfg);

// A child's SIGHUP (serve validated the file first): the file loaded again into running (the
// restart-only keys keep their values, config/reload.hpp), the log level applied, and the new TLS
// context for the child's listener from files (nullptr, said in one line, when it cannot be loaded:
// the old one stays). False (logged) when the file no longer loads: running is unchanged.
bool reload_child_config(config::Config& running, std::string_view who);
std::shared_ptr<boost::asio::ssl::context> reload_tls(
    const std::pair<std::filesystem::path, std::filesystem::path>& files, std::string_view who,
    const std::optional<common::SystemUser>& user);

// [server] log_level applied to the running logger.
void set_log_level(std::string_view level);

// [branding] as the escrow services and the portal show it.
escrow::Brand escrow_brand(const config::Config& cfg);
// [escrow] and [portal] as the escrow service's settings.
escrow::ServiceSettings escrow_service_settings(const config::Config& cfg);

// Runs io on n threads (the calling one included) until it stops.
void run_io(boost::asio::io_context& io);

// The part of a child that follows the binding of its listeners: drop to ctx.user (if any), then
// say so. Returns false (logged) when the drop failed: the child must exit.
bool drop_in_child(const ChildContext& ctx);

// The portal process: opens the store as store::Role::portal, connects to the key holder over
// key_fd (its own socketpair), serves [escrow] listen until SIGTERM (SIGHUP: a new certificate for
// new connections). Returns the exit status.
int run_portal_process(const ChildContext& ctx, std::shared_ptr<boost::asio::ssl::context> tls, int key_fd);

// The submission process: opens the store as store::Role::submission and serves [submission]
// listen and tls_listen until SIGTERM (drains: see SubmissionServer::drain; a second SIGTERM stops
// at once). SIGHUP: new sessions get the new configuration and certificate. Returns the exit status.
int run_submission_process(const ChildContext& ctx, std::shared_ptr<boost::asio::ssl::context> tls);

}  // namespace mailward::cli
