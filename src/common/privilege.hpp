// Dropping root (docs/design.md, "Process model"): look up the unprivileged system user of
// [server] user, hand data_dir to it, and switch the process to it for good (supplementary groups,
// gid, uid; then prove that root cannot be taken back, and set no_new_privs so no exec can gain
// privileges). Linux; called at startup only, before any untrusted input is read.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace mailward::common {

struct SystemUser {
    std::string name;
    uid_t uid = 0;
    gid_t gid = 0;
};

// not_found when there is no such user; invalid_argument when it is root (uid 0).
Result<SystemUser> find_user(const std::string& name);

// PR_SET_NO_NEW_PRIVS for this thread and every thread and child created after: no execve can
// gain privileges. serve calls it first, before it starts any thread.
Result<void> forbid_new_privileges();

// initgroups, setgid, setuid, then checks that setuid(0) and setgid(0) fail and that the real,
// effective and saved ids are the user's, then sets PR_SET_NO_NEW_PRIVS. Any failure is an error
// (the caller stops: a half-dropped process must not go on).
Result<void> drop_privileges(const SystemUser& user);

// Gives dir itself and everything under it to user (lchown: symlinks are not followed), except the
// paths in keep (e.g. the master key file, which stays root's). Errors name nothing: the caller
// logs them with the directory.
Result<void> chown_tree(const std::filesystem::path& dir, const SystemUser& user,
                        const std::vector<std::filesystem::path>& keep);

// While it lives, files this process creates belong to user: started as root, it switches the
// effective gid and uid to the user's (root stays the saved id and takes them back at the end).
// A child of serve opens the store this way before its drop: SQLite creates the -wal and -shm
// files at the first open, and root-owned ones would lock out every process after the drop.
// Does nothing when the process is not root or user is empty.
class CreateFilesAs {
  public:
    explicit CreateFilesAs(const std::optional<SystemUser>& user);
    ~CreateFilesAs();
    CreateFilesAs(const CreateFilesAs&) = delete;
    CreateFilesAs& operator=(const CreateFilesAs&) = delete;
    bool switched() const { return switched_; }

  private:
    bool switched_ = false;
};

}  // namespace mailward::common
