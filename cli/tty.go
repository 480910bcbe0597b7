package cli

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// watchResize sends the terminal's size on every SIGWINCH until the returned stop
// function is called.
func watchResize(fd int, sizes chan<- [2]uint16) (stop func()) {
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-winch:
				if w, h, err := term.GetSize(fd); err == nil {
					select {
					case sizes <- [2]uint16{uint16(w), uint16(h)}:
					default: // the previous size is still queued; this one follows next time
					}
				}
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		close(done)
	}
}
