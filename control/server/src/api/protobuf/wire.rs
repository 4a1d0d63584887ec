//! Protobuf's wire format: a message is a run of (field number, wire
//! type, value) records. Only what Kubernetes' `generated.proto` uses is
//! read; fixed-width values are skipped (no served kind has one).

/// One field's value off the wire.
pub(super) enum Wire<'a> {
    Varint(u64),
    /// Length-delimited: a string, bytes, a message or a packed list.
    Bytes(&'a [u8]),
    /// A fixed 32- or 64-bit value, never used by the kinds keel reads.
    Fixed,
}

pub(super) fn varint(b: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*at).ok_or("truncated varint")?;
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

/// The fields of one message, in the order they were written.
pub(super) fn fields(b: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < b.len() {
        let tag = varint(b, &mut at)?;
        let num = u32::try_from(tag >> 3).map_err(|_| "field number out of range")?;
        if num == 0 {
            return Err("field number 0 is not valid protobuf".into());
        }
        let w = match tag & 7 {
            0 => Wire::Varint(varint(b, &mut at)?),
            2 => {
                let len = usize::try_from(varint(b, &mut at)?).map_err(|_| "truncated field")?;
                let end = at
                    .checked_add(len)
                    .filter(|e| *e <= b.len())
                    .ok_or("truncated field")?;
                let s = &b[at..end];
                at = end;
                Wire::Bytes(s)
            }
            1 => {
                at += 8;
                Wire::Fixed
            }
            5 => {
                at += 4;
                Wire::Fixed
            }
            other => return Err(format!("wire type {other} is not supported")),
        };
        out.push((num, w));
    }
    if at > b.len() {
        return Err("truncated field".into());
    }
    Ok(out)
}

/// Whether a value is protobuf's zero: 0, empty, or a message whose own
/// fields are all zero (how Go's generated code writes an unset struct).
pub(super) fn is_zero(w: &Wire) -> bool {
    match w {
        Wire::Varint(v) => *v == 0,
        Wire::Fixed => false,
        Wire::Bytes(b) => {
            b.is_empty() || fields(b).is_ok_and(|fs| fs.iter().all(|(_, w)| is_zero(w)))
        }
    }
}
