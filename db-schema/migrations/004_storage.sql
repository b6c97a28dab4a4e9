-- 004: storage. Images are imported OS images, stored raw in a pool (a
-- directory); volumes are a VM's disks made in a pool, empty or cloned from
-- an image. Files are named after the row (<pool dir>/<name>.img and
-- <name>.vol), so the row is the whole truth about what the daemon owns.
CREATE TABLE images (
    name         TEXT PRIMARY KEY NOT NULL
                 CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 63),
    pool         TEXT NOT NULL CHECK (length(CAST(pool AS BLOB)) BETWEEN 1 AND 63),
    state        TEXT NOT NULL CHECK (state IN ('importing', 'ready', 'failed')),
    format       TEXT NOT NULL CHECK (format IN ('raw', 'qcow2')), -- what it came as
    size_bytes   INTEGER NOT NULL DEFAULT 0 CHECK (size_bytes >= 0), -- raw, as stored
    source_bytes INTEGER NOT NULL DEFAULT 0 CHECK (source_bytes >= 0),
    sha256       TEXT NOT NULL DEFAULT '' -- of the source as received; '' until known
                 CHECK (length(sha256) IN (0, 64)),
    source       TEXT NOT NULL CHECK (length(CAST(source AS BLOB)) BETWEEN 1 AND 1023),
    error        TEXT NOT NULL DEFAULT '' CHECK (length(CAST(error AS BLOB)) < 256),
    created_at   INTEGER NOT NULL, -- unix time in ms
    updated_at   INTEGER NOT NULL
) STRICT;

-- An image cannot go while a volume says it was cloned from it (RESTRICT):
-- the daemon answers 409 naming them before it tries.
CREATE TABLE volumes (
    name       TEXT PRIMARY KEY NOT NULL
               CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 63),
    pool       TEXT NOT NULL CHECK (length(CAST(pool AS BLOB)) BETWEEN 1 AND 63),
    size_mib   INTEGER NOT NULL CHECK (size_mib BETWEEN 1 AND 16777216),
    image      TEXT REFERENCES images (name) ON DELETE RESTRICT,
    clone      TEXT NOT NULL CHECK (clone IN ('empty', 'reflink', 'sparse-copy')),
    readonly   INTEGER NOT NULL CHECK (readonly IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
CREATE INDEX volumes_image ON volumes (image);
