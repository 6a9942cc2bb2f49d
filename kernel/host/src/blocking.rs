//! WASI's blocking calls, bounded by the call's deadline.
//!
//! The epoch deadline interrupts wasm code only: while a host function blocks
//! (a `wasi:clocks` sleep, a wait on an HTTP response or body), no wasm runs and
//! nothing would end the call. Every `wasi:io` function that may block is linked
//! again here, shadowing wasmtime-wasi's: each runs the same implementation under
//! a timeout of what is left of the call's deadline, and traps when it passes
//! (the call ends as a timeout). Blocking elsewhere in WASI is impossible with
//! nothing granted: no files, sockets or stdin.

use std::future::Future;
use std::time::Duration;

use wasmtime::component::{Linker, Resource};
use wasmtime::{Result, StoreContextMut};
use wasmtime_wasi_io::bindings::wasi::io::{poll, streams};
use wasmtime_wasi_io::poll::DynPollable;
use wasmtime_wasi_io::streams::{DynInputStream, DynOutputStream, StreamError};

use crate::state::State;

/// The `wasi:io` version wasmtime-wasi links; older imports resolve to it.
const POLL: &str = "wasi:io/poll@0.2.12";
const STREAMS: &str = "wasi:io/streams@0.2.12";

/// Why a blocking host call ended the call: its deadline passed while it waited.
#[derive(Debug, thiserror::Error)]
#[error("the call's deadline passed while a WASI call blocked")]
pub(crate) struct DeadlinePassed;

/// Run a blocking WASI operation for at most the call's remaining time.
fn bounded<'a, T, F>(state: &'a mut State, op: impl FnOnce(&'a mut wasmtime::component::ResourceTable) -> F) -> Result<T>
where
    F: Future<Output = T> + 'a,
{
    let Some(left) = state.time_left() else { return Err(DeadlinePassed.into()) };
    // A wait shorter than a millisecond still yields to the runtime once.
    let left = left.max(Duration::from_micros(100));
    let table = state.table();
    wasmtime_wasi::runtime::in_tokio(async move { tokio::time::timeout(left, op(table)).await }).map_err(|_| DeadlinePassed.into())
}

/// A stream operation's result as the guest sees it: a `stream-error`, or a trap.
fn stream_result<T>(
    store: &mut StoreContextMut<'_, State>,
    result: Result<Result<T, StreamError>>,
) -> Result<(Result<T, streams::StreamError>,)> {
    match result? {
        Ok(value) => Ok((Ok(value),)),
        Err(err) => Ok((Err(streams::Host::convert_stream_error(store.data_mut().table(), err)?),)),
    }
}

pub(crate) fn add_to_linker(linker: &mut Linker<State>) -> Result<()> {
    linker.allow_shadowing(true);
    let mut io = linker.instance(POLL)?;
    io.func_wrap("poll", |mut store: StoreContextMut<'_, State>, (list,): (Vec<Resource<DynPollable>>,)| {
        let ready = bounded(store.data_mut(), |t| poll::Host::poll(t, list))??;
        Ok((ready,))
    })?;
    io.func_wrap("[method]pollable.block", |mut store: StoreContextMut<'_, State>, (pollable,): (Resource<DynPollable>,)| {
        bounded(store.data_mut(), |t| poll::HostPollable::block(t, pollable))??;
        Ok(())
    })?;

    let mut io = linker.instance(STREAMS)?;
    io.func_wrap(
        "[method]input-stream.blocking-read",
        |mut store: StoreContextMut<'_, State>, (stream, len): (Resource<DynInputStream>, u64)| {
            let read = bounded(store.data_mut(), |t| streams::HostInputStream::blocking_read(t, stream, len));
            stream_result(&mut store, read)
        },
    )?;
    io.func_wrap(
        "[method]input-stream.blocking-skip",
        |mut store: StoreContextMut<'_, State>, (stream, len): (Resource<DynInputStream>, u64)| {
            let skipped = bounded(store.data_mut(), |t| streams::HostInputStream::blocking_skip(t, stream, len));
            stream_result(&mut store, skipped)
        },
    )?;
    io.func_wrap(
        "[method]output-stream.blocking-write-and-flush",
        |mut store: StoreContextMut<'_, State>, (stream, bytes): (Resource<DynOutputStream>, Vec<u8>)| {
            let written = bounded(store.data_mut(), |t| streams::HostOutputStream::blocking_write_and_flush(t, stream, bytes));
            stream_result(&mut store, written)
        },
    )?;
    io.func_wrap(
        "[method]output-stream.blocking-write-zeroes-and-flush",
        |mut store: StoreContextMut<'_, State>, (stream, len): (Resource<DynOutputStream>, u64)| {
            let written = bounded(store.data_mut(), |t| streams::HostOutputStream::blocking_write_zeroes_and_flush(t, stream, len));
            stream_result(&mut store, written)
        },
    )?;
    io.func_wrap(
        "[method]output-stream.blocking-flush",
        |mut store: StoreContextMut<'_, State>, (stream,): (Resource<DynOutputStream>,)| {
            let flushed = bounded(store.data_mut(), |t| streams::HostOutputStream::blocking_flush(t, stream));
            stream_result(&mut store, flushed)
        },
    )?;
    io.func_wrap(
        "[method]output-stream.blocking-splice",
        |mut store: StoreContextMut<'_, State>, (dst, src, len): (Resource<DynOutputStream>, Resource<DynInputStream>, u64)| {
            let spliced = bounded(store.data_mut(), |t| streams::HostOutputStream::blocking_splice(t, dst, src, len));
            stream_result(&mut store, spliced)
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
