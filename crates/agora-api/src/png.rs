//! A PNG encoder for map overlays: 8-bit RGBA, no interlacing, each row unfiltered, the image data
//! compressed with zlib (flate2, already in the tree for HTTP compression). An overlay is a grid of
//! at most 40,000 cells, so this is all a map needs; nothing here decodes.

use std::io::Write;

/// The 8-byte PNG signature.
const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = crc32fast::Hasher::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
}

/// Encode `width` × `height` RGBA pixels, row by row from the top.
pub(crate) fn encode_rgba(width: u32, height: u32, rgba: &[u8]) -> Vec<u8> {
    assert_eq!(rgba.len(), width as usize * height as usize * 4, "one RGBA quadruple per pixel");
    let mut out = Vec::with_capacity(rgba.len() / 4 + 64);
    out.extend_from_slice(&SIGNATURE);
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    // Bit depth 8, colour type 6 (RGBA), deflate, adaptive filtering, no interlace.
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    for row in rgba.chunks(width as usize * 4) {
        // Filter type 0 (none) before each row. Writing to a Vec cannot fail.
        let _ = z.write_all(&[0]);
        let _ = z.write_all(row);
    }
    let data = z.finish().unwrap_or_default();
    chunk(&mut out, b"IDAT", &data);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn chunks_carry_their_crc_and_the_rows_inflate_back() {
        let px: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8 * 10).collect();
        let png = encode_rgba(2, 3, &px);
        assert_eq!(png[..8], SIGNATURE);
        // Walk the chunks: IHDR, IDAT, IEND, each CRC as the specification computes it.
        let mut at = 8;
        let mut kinds = Vec::new();
        let mut idat = Vec::new();
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let kind = &png[at + 4..at + 8];
            let data = &png[at + 8..at + 8 + len];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc, crc32fast::hash(&png[at + 4..at + 8 + len]));
            kinds.push(String::from_utf8(kind.to_vec()).unwrap());
            if kind == b"IHDR" {
                assert_eq!(data, [0, 0, 0, 2, 0, 0, 0, 3, 8, 6, 0, 0, 0]);
            }
            if kind == b"IDAT" {
                idat.extend_from_slice(data);
            }
            at += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&idat[..]).read_to_end(&mut raw).unwrap();
        let rows: Vec<&[u8]> = raw.chunks(1 + 8).collect();
        assert_eq!(rows.len(), 3);
        for (r, row) in rows.iter().enumerate() {
            assert_eq!(row[0], 0, "filter none");
            assert_eq!(&row[1..], &px[r * 8..r * 8 + 8]);
        }
    }
}
