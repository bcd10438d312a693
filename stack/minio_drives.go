package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// minioDrivesEnv lets MinIO erasure-code over folders of one disk: outside
// CI/CD mode it refuses drives on the root disk, and says only "drive not
// found".
var minioDrivesEnv = []string{"MINIO_CI_CD=on"}

// makeDrives creates the data dir, and with more than one drive its drive
// folders d1 ... dN, and returns the server's argument for them (MinIO's
// ellipsis form, DataDir/d{1...N}).
func (m *MinIO) makeDrives(dataDir string, drives int) (string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return "", fmt.Errorf("start minio: create data dir %q: %w", dataDir, err)
	}
	if drives <= 1 {
		return dataDir, nil
	}
	for i := 1; i <= drives; i++ {
		d := filepath.Join(dataDir, "d"+strconv.Itoa(i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", fmt.Errorf("start minio: create drive %q: %w", d, err)
		}
		m.drives = append(m.drives, d)
	}
	return filepath.Join(dataDir, "d{1..."+strconv.Itoa(drives)+"}"), nil
}

// Drive is the folder of drive i (1 to Drives) of a server started with
// Drives, or "".
func (m *MinIO) Drive(i int) string {
	if i < 1 || i > len(m.drives) {
		return ""
	}
	return m.drives[i-1]
}

// failedDrive is where FailDrive moves drive's folder.
func failedDrive(drive string) string { return drive + ".failed" }

// FailDrive makes drive i unusable while the server runs, as a dead disk:
// its folder moves aside and a file takes its place, so that every read
// and write on it fails (ENOTDIR): writes go on at the write quorum of the
// other drives, and MinIO's drive monitor logs "drive is not directory or
// mountpoint" at its next check. Permissions would not do: MinIO runs as root here, which
// reads and writes through chmod 000; and a folder merely removed is made
// again by MinIO at its next check, as a new blank drive, and healed. Note
// that MinIO's metrics (drives_online_count, drive_health) keep counting
// the drive online all along.
func (m *MinIO) FailDrive(i int) error {
	d := m.Drive(i)
	if d == "" {
		return fmt.Errorf("fail minio drive %d: the server has %d drives", i, len(m.drives))
	}
	if err := os.Rename(d, failedDrive(d)); err != nil {
		return fmt.Errorf("fail minio drive %q: %w", d, err)
	}
	if err := os.WriteFile(d, []byte("a failed drive: see stack.MinIO.FailDrive\n"), 0o600); err != nil {
		return fmt.Errorf("fail minio drive %q: %w", d, err)
	}
	return nil
}

// HealDrive puts back drive i, which FailDrive took away, with what it
// held then: MinIO's drive monitor takes it back online, and MinIO heals
// the objects written meanwhile onto it.
func (m *MinIO) HealDrive(i int) error {
	d := m.Drive(i)
	if d == "" {
		return fmt.Errorf("heal minio drive %d: the server has %d drives", i, len(m.drives))
	}
	if err := os.Remove(d); err != nil {
		return fmt.Errorf("heal minio drive %q: %w", d, err)
	}
	if err := os.Rename(failedDrive(d), d); err != nil {
		return fmt.Errorf("heal minio drive %q: %w", d, err)
	}
	return nil
}

// DriveHolds says whether drive i holds a shard of bucket/key (its
// xl.meta, in MinIO's layout): whether MinIO wrote the object there, or
// healed it back there after a failure.
func (m *MinIO) DriveHolds(i int, bucket, key string) bool {
	d := m.Drive(i)
	if d == "" {
		return false
	}
	fi, err := os.Stat(filepath.Join(d, bucket, filepath.FromSlash(key), "xl.meta"))
	return err == nil && fi.Mode().IsRegular()
}
