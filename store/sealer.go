package store

// Sealer encrypts what the store writes to disk for the resources it chooses, and
// decrypts it on the way back. Open must accept values written before sealing was
// turned on (plaintext), so that turning it on needs no migration.
type Sealer interface {
	Seal(resource string, plaintext []byte) ([]byte, error)
	Open(resource string, stored []byte) ([]byte, error)
}

func sealerOrNone(s Sealer) Sealer {
	if s == nil {
		return noSealer{}
	}
	return s
}

// noSealer stores everything as it is.
type noSealer struct{}

func (noSealer) Seal(_ string, b []byte) ([]byte, error) { return b, nil }
func (noSealer) Open(_ string, b []byte) ([]byte, error) { return b, nil }
