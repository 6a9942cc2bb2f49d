// The console's build. `npm run build` writes dist/, which the kith binary embeds
// (kernel/kith/build.rs). `npm run dev` serves the sources with hot reload and sends
// /v1 to a running kernel (KITH_URL, default http://127.0.0.1:7700); with KITH_DEV_KEY
// the proxy signs every request with that API key, so screens can be worked on
// without signing in.
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

const target = process.env.KITH_URL || 'http://127.0.0.1:7700';
const key = process.env.KITH_DEV_KEY;

export default defineConfig({
  plugins: [preact()],
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // One file per lazily loaded screen; no source maps in the binary.
    sourcemap: false,
    target: 'es2022',
    chunkSizeWarningLimit: 400,
  },
  server: {
    port: 5173,
    proxy: {
      '/v1': {
        target,
        changeOrigin: true,
        headers: key ? { authorization: `Bearer ${key}` } : {},
      },
      '/openapi.json': { target, changeOrigin: true },
    },
  },
});
