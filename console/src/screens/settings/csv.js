// CSV as shop exports write it (RFC 4180): fields separated by commas, quoted with `"` when they
// hold a comma, a quote (doubled) or a line break; lines ended by CRLF, LF or CR; a UTF-8 byte
// order mark before the header ignored.

/**
 * The records of `text`, each `{line, fields}` where `line` is the 1-based line the record
 * starts on (the header is line 1). A quote left open runs to the end of the text; a quote
 * inside an unquoted field is taken as it is. Blank lines are skipped.
 */
export function parseCsv(text) {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const start = line;
    const fields = [];
    let field = '';
    let quoted = false; // inside quotes
    let ended = false;
    while (i < n) {
      const ch = text[i];
      if (quoted) {
        if (ch === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
          } else {
            quoted = false;
            i += 1;
          }
        } else {
          if (ch === '\n' || (ch === '\r' && text[i + 1] !== '\n')) line += 1;
          field += ch;
          i += 1;
        }
        continue;
      }
      if (ch === '"' && field === '') {
        quoted = true;
        i += 1;
      } else if (ch === ',') {
        fields.push(field);
        field = '';
        i += 1;
      } else if (ch === '\r' || ch === '\n') {
        i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1;
        line += 1;
        ended = true;
        break;
      } else {
        field += ch;
        i += 1;
      }
    }
    fields.push(field);
    const blank = fields.length === 1 && fields[0] === '';
    if (!blank) records.push({ line: start, fields });
    if (!ended && i >= n) break;
  }
  return records;
}

function quote(value) {
  const s = value === null || value === undefined ? '' : String(value);
  return /[",\r\n]/.test(s) || /^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** Rows (arrays of values) as CSV text, CRLF-ended, with a byte order mark so Excel reads UTF-8. */
export function toCsv(rows) {
  return `\ufeff${rows.map((r) => r.map(quote).join(',')).join('\r\n')}\r\n`;
}

/**
 * The text of a file's bytes: UTF-8 (with or without a byte order mark), else GBK (read as
 * GB18030, which contains it) when the bytes are not UTF-8 but are GBK, as exports of Chinese
 * platforms often are. Answers `{text, encoding}`; UTF-16 is refused.
 */
export function decode(bytes) {
  const b = new Uint8Array(bytes);
  if ((b[0] === 0xff && b[1] === 0xfe) || (b[0] === 0xfe && b[1] === 0xff)) {
    throw new Error('utf16');
  }
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(b), encoding: 'UTF-8' };
  } catch {
    try {
      return { text: new TextDecoder('gb18030', { fatal: true }).decode(b), encoding: 'GBK' };
    } catch {
      return { text: new TextDecoder('utf-8').decode(b), encoding: 'UTF-8' };
    }
  }
}
