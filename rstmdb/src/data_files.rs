//! How the storage layers create and open the files of a data directory: directories 0700 and
//! files 0600 (the process umask can only make them stricter), and never through a symbolic
//! link. The data directory holds every instance's context and the WAL that rebuilds it, so
//! other local users get no access, and a symlink planted where a segment, checkpoint or index
//! file belongs cannot redirect a write (or a repair's truncation) to a file elsewhere.
//!
//! A data directory that is itself a symlink (`/var/lib/rstmdb -> /mnt/disk`) still works:
//! only the last component of a path is refused when it is a link.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// Mode of the directories rstmdb creates (before the umask).
pub const DIR_MODE: u32 = 0o700;
/// Mode of the files rstmdb creates (before the umask).
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents with [`DIR_MODE`]. Directories that exist are left as
/// they are.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Open options that create files with [`FILE_MODE`] and refuse a symlink as the last path
/// component (`O_NOFOLLOW`); the caller adds read, write, create and so on. Pass the error of
/// `open` through [`explain_symlink`].
pub fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE).custom_flags(libc::O_NOFOLLOW);
    options
}

/// Turns the bare "too many levels of symbolic links" (or "file exists", for an exclusive
/// create) that opening a symlink gives into an error that names `path` and says why. The error
/// kind is kept, so callers that match on it behave as before.
pub fn explain_symlink(path: &Path, err: io::Error) -> io::Error {
    let followed_a_link = err.raw_os_error() == Some(libc::ELOOP)
        || (err.kind() == io::ErrorKind::AlreadyExists && is_symlink(path));
    if !followed_a_link {
        return err;
    }
    io::Error::new(
        err.kind(),
        format!(
            "{} is a symbolic link; rstmdb does not open data files through symlinks \
             (replace it with the file itself)",
            path.display()
        ),
    )
}

fn is_symlink(path: &Path) -> bool {
    path.symlink_metadata()
        .is_ok_and(|meta| meta.file_type().is_symlink())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn files_and_directories_are_private_to_the_owner() {
        let temp = tempfile::tempdir().expect("temp dir");
        let dir = temp.path().join("a/b");
        create_dir_all(&dir).expect("create");
        let file = dir.join("f");
        open_options()
            .write(true)
            .create_new(true)
            .open(&file)
            .expect("create file");
        // The umask can only clear bits, so at most these.
        assert_eq!(mode(&temp.path().join("a")) & !DIR_MODE, 0);
        assert_eq!(mode(&dir) & !DIR_MODE, 0);
        assert_eq!(mode(&file) & !FILE_MODE, 0);
    }

    #[test]
    fn a_symlink_is_refused_naming_the_path() {
        let temp = tempfile::tempdir().expect("temp dir");
        let target = temp.path().join("target");
        std::fs::write(&target, b"precious").expect("write target");
        let link = temp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");

        let opened = open_options().read(true).write(true).open(&link);
        let err = explain_symlink(&link, opened.expect_err("a symlink is not followed"));
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert!(
            err.to_string().contains(&link.display().to_string()),
            "{err}"
        );

        let created = open_options().write(true).create_new(true).open(&link);
        let err = explain_symlink(&link, created.expect_err("an exclusive create fails"));
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        assert_eq!(std::fs::read(&target).expect("read target"), b"precious");
    }
}
