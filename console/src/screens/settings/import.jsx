// CSV import: the file is read here, in the browser, and its rows posted as events to
// `POST /v1/events` in batches, with a progress bar; rows refused while reading or by the API's
// per-event outcome are listed and downloadable as CSV, each with its line, field and reason.
import { useEffect, useRef, useState } from 'preact/hooks';
import { post } from '../../api.js';
import { number } from '../../format.js';
import { currentShop, can } from '../../session.js';
import { Card, ErrorBox, Field, Table } from '../../ui.jsx';
import { decode, parseCsv, toCsv } from './csv.js';
import { FIELDS, buildEvents, defaultField, validField } from './importer.js';

const BATCH = 200;

export default function Import({ t }) {
  const [kind, setKind] = useState('customers');
  const [file, setFile] = useState(null); // {name, records, encoding}
  const [columns, setColumns] = useState([]);
  const [problem, setProblem] = useState(null);
  const [run, setRun] = useState(null); // {done, total, accepted, duplicates, rejected: [], finished, error}
  const [url, setUrl] = useState(null);
  const inputRef = useRef(null);
  useEffect(() => () => url && URL.revokeObjectURL(url), [url]);
  if (!can('events:write')) return <p class="hint">{t('noEventsWrite')}</p>;

  const choose = async (e) => {
    const f = e.currentTarget.files && e.currentTarget.files[0];
    setProblem(null);
    setRun(null);
    setFile(null);
    if (!f) return;
    let decoded;
    try {
      decoded = decode(await f.arrayBuffer());
    } catch {
      setProblem(t('utf16'));
      return;
    }
    const records = parseCsv(decoded.text);
    if (records.length < 2) {
      setProblem(t('emptyFile'));
      return;
    }
    setFile({ name: f.name, records, encoding: decoded.encoding });
    setColumns(records[0].fields.map((h) => defaultField(h.replace(/^\ufeff/, ''))));
  };

  // A reason of the browser's reading in the console's language; the kernel's as it answered.
  const why = (r) => (r.code ? t(`why_${r.code}`, r.vars || {}) : r.reason);

  const start = async () => {
    setProblem(null);
    if (url) URL.revokeObjectURL(url);
    setUrl(null);
    let built;
    try {
      built = await buildEvents(file.records, columns, kind, currentShop()?.time_zone || 'UTC');
    } catch (err) {
      setProblem(err.message === 'no-identity' ? t('noIdentity') : err.message === 'no-order-id' ? t('noOrderId') : err.message);
      return;
    }
    const rejected = [...built.rejected];
    let state = { done: 0, total: built.events.length, accepted: 0, duplicates: 0, rows: file.records.length - 1, finished: false, error: null };
    setRun({ ...state, rejected });
    for (let i = 0; i < built.events.length; i += BATCH) {
      const batch = built.events.slice(i, i + BATCH);
      let report;
      try {
        report = await post('/v1/events', { events: batch.map((b) => b.event) });
      } catch (err) {
        state = { ...state, error: err };
        break;
      }
      for (const o of report.outcomes) {
        if (o.status !== 'rejected') continue;
        for (const line of batch[o.index].lines) rejected.push({ line, field: o.field || '', reason: o.reason || '' });
      }
      state = { ...state, done: state.done + batch.length, accepted: state.accepted + report.accepted, duplicates: state.duplicates + report.duplicates };
      setRun({ ...state, rejected: [...rejected] });
    }
    rejected.sort((a, b) => a.line - b.line);
    state = { ...state, finished: true };
    setRun({ ...state, rejected });
    if (rejected.length) {
      // The rejected rows as they were in the file, with their line, field and reason.
      const byLine = new Map(file.records.map((r) => [r.line, r.fields]));
      const head = file.records[0].fields.map((h) => h.replace(/^\ufeff/, ''));
      const rows = [
        [...head, 'line', 'field', 'reason'],
        ...rejected.map((r) => {
          const values = byLine.get(r.line) || [];
          return [...head.map((_, i) => values[i] ?? ''), r.line, r.field, why(r)];
        }),
      ];
      setUrl(URL.createObjectURL(new Blob([toCsv(rows)], { type: 'text/csv;charset=utf-8' })));
    }
  };

  const headers = file ? file.records[0].fields.map((h) => h.replace(/^\ufeff/, '').trim()) : [];
  const first = file ? file.records[1].fields : [];
  const pct = run ? (run.total ? Math.round((run.done / run.total) * 100) : 100) : 0;
  const busy = run && !run.finished;
  const base = file ? file.name.replace(/\.[^.]*$/, '') : 'import';
  return (
    <Card title={t('import')} id="import">
      <p class="hint">{t('importHelp')}</p>
      <div class="toolbar">
        <Field label={t('kind')}>
          {(p) => (
            <select {...p} name="kind" value={kind} disabled={busy} onChange={(e) => setKind(e.currentTarget.value)}>
              <option value="customers">{t('customers')}</option>
              <option value="orders">{t('orders')}</option>
            </select>
          )}
        </Field>
        <Field label={t('file')}>{(p) => <input {...p} ref={inputRef} type="file" name="file" accept=".csv,text/csv" disabled={busy} onChange={choose} />}</Field>
      </div>
      {problem && <ErrorBox error={new Error(problem)} />}
      {file && (
        <>
          <p class="muted">{t('encoding', { encoding: file.encoding })}</p>
          <Table
            caption={t('columns')}
            columns={[
              { key: 'h', label: t('column') },
              {
                key: 'f',
                label: t('field'),
                render: (r) => (
                  <select aria-label={`${t('field')}: ${r.h}`} value={columns[r.i]} disabled={busy} onChange={(e) => setColumns(columns.map((c, j) => (j === r.i ? e.currentTarget.value : c)))}>
                    {[...new Set([...FIELDS, `attr:${r.h}`, columns[r.i]])].filter(validField).map((f) => (
                      <option value={f}>{f === 'ignore' ? t('fieldIgnore') : f}</option>
                    ))}
                  </select>
                ),
              },
              { key: 's', label: t('sample'), render: (r) => <span class="mono">{first[r.i] || ''}</span> },
            ]}
            rows={headers.map((h, i) => ({ h, i }))}
          />
          <div class="actions import-start">
            <button type="button" class="primary" disabled={busy} onClick={start}>
              {t('start', { n: number(file.records.length - 1) })}
            </button>
          </div>
        </>
      )}
      {run && (
        <div class="import-run">
          <label for="import-progress">{t('progress')}</label>
          <div class="progress-line">
            <progress id="import-progress" max={100} value={pct} aria-valuetext={`${pct}%`} />
            <span data-testid="import-percent">{pct}%</span>
          </div>
          {run.error && <ErrorBox error={new Error(t('stopped', { error: run.error.message }))} />}
          {run.finished && (
            <p role="status" data-testid="import-summary">
              {t('imported', { rows: number(run.rows), accepted: number(run.accepted), duplicates: number(run.duplicates), rejected: number(run.rejected.length) })}
            </p>
          )}
          {run.finished && url && (
            <p>
              <a href={url} download={`${base}.errors.csv`} class="button">
                {t('downloadRejected')}
              </a>
            </p>
          )}
          {run.finished && run.rejected.length > 0 && (
            <Table
              caption={t('rejectedRows')}
              columns={[
                { key: 'line', label: t('line'), class: 'num' },
                { key: 'field', label: t('field'), render: (r) => <span class="mono">{r.field || '—'}</span> },
                { key: 'reason', label: t('reason'), render: why },
              ]}
              rows={run.rejected.slice(0, 200)}
            />
          )}
        </div>
      )}
    </Card>
  );
}
