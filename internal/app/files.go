package app

import (
	"io/fs"
	"os"
	"path/filepath"
)

// ownerOnlyDir creates dir (and its parents) for the console's owner only,
// and makes it so when it already existed with a wider mode: MkdirAll
// leaves an existing directory as it is.
func ownerOnlyDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o700)
}

// ownerOnlyTree makes every directory under dir 0700 and every file 0600:
// the data directory holds the database, the session key, upload files and
// the sandbox's keys and codes, and may have been created (or restored) by
// hand or by an older console with a wider mode. Symbolic links are left
// alone.
func ownerOnlyTree(dir string) error {
	if err := ownerOnlyDir(dir); err != nil {
		return err
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) { // removed while walking (a temporary file)
				return nil
			}
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return nil
		case d.IsDir():
			return chmodIfWider(path, 0o700)
		case d.Type().IsRegular():
			return chmodIfWider(path, 0o600)
		}
		return nil
	})
}

func chmodIfWider(path string, mode fs.FileMode) error {
	info, err := os.Lstat(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if info.Mode().Perm()&^mode == 0 {
		return nil
	}
	return os.Chmod(path, info.Mode().Perm()&mode)
}
