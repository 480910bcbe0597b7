package container

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOverlay mounts an overlayfs at target with lower (lowest layer
// first, as images list them), upper and work.
//
// It uses the new mount API and adds the layers one by one with
// "lowerdir+" (Linux 6.8): the classic "lowerdir=a:b:c" option must fit
// in one page of mount data, which an image of a few dozen layers with
// long content-addressed paths overflows. Older kernels get the classic
// option, built from the same list.
//
// The mount is "volatile" (Linux 5.10): overlayfs then skips every sync of
// the upper layer, including the one at unmount, which here cost 7–20 ms
// per container (an ext4 journal commit) against 3–4 ms without. The upper
// layer is scratch space that Destroy deletes; after a host crash the
// container is gone anyway (its processes are), and overlayfs refuses to
// remount a volatile upper that was not unmounted cleanly, so stale data
// cannot be reused by mistake.
func mountOverlay(lower []string, upper, work, target string) error {
	err := mountOverlayFsopen(lower, upper, work, target, true)
	if errors.Is(err, unix.EINVAL) {
		err = mountOverlayFsopen(lower, upper, work, target, false)
	}
	if errors.Is(err, unix.ENOSYS) {
		err = unix.Mount("overlay", target, "overlay", 0, overlayData(lower, upper, work))
	}
	if err != nil {
		return fmt.Errorf("mount overlay on %s: %w", target, err)
	}
	return nil
}

// overlayLowerdir joins layers top-first, escaping the separators.
func overlayLowerdir(lower []string) string {
	parts := make([]string, 0, len(lower))
	for i := len(lower) - 1; i >= 0; i-- {
		parts = append(parts, escapeOverlay(lower[i]))
	}
	return strings.Join(parts, ":")
}

func escapeOverlay(p string) string {
	return strings.NewReplacer(`\`, `\\`, `:`, `\:`, `,`, `\,`).Replace(p)
}

func overlayData(lower []string, upper, work string) string {
	return "lowerdir=" + overlayLowerdir(lower) + ",upperdir=" + escapeOverlay(upper) + ",workdir=" + escapeOverlay(work)
}

func mountOverlayFsopen(lower []string, upper, work, target string, perLayer bool) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("fsopen", err)
	}
	defer unix.Close(fsfd)
	set := func(k, v string) error {
		if err := unix.FsconfigSetString(fsfd, k, v); err != nil {
			return fmt.Errorf("fsconfig %s=%s: %w", k, v, err)
		}
		return nil
	}
	if perLayer {
		// "lowerdir+" takes the uppermost lower layer first, like the
		// colon list; values are plain paths, no escaping.
		for i := len(lower) - 1; i >= 0; i-- {
			if err := set("lowerdir+", lower[i]); err != nil {
				return err
			}
		}
	} else if err := set("lowerdir", overlayLowerdir(lower)); err != nil {
		return err
	}
	if err := set("upperdir", upper); err != nil {
		return err
	}
	if err := set("workdir", work); err != nil {
		return err
	}
	// Best effort: kernels before 5.10 reject the flag and mount without it.
	_ = unix.FsconfigSetFlag(fsfd, "volatile")
	_ = unix.FsconfigSetString(fsfd, "source", "overlay") // as mount(8) shows it
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return os.NewSyscallError("fsconfig create", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("fsmount", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return os.NewSyscallError("move_mount", err)
	}
	return nil
}

// unmountAll unmounts target and anything stacked on it; "not mounted" is
// success. A lazy unmount is the fallback when something still holds it
// busy (an agent process with its cwd there, say); the running container
// does not: it has its own copy of the mount in its mount namespace.
func unmountAll(target string) error {
	for range 16 {
		err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("unmount %s: %w", target, err)
			}
		default:
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return nil
}
