// The example project's upload page: Uppy's Dashboard sending files over tus
// to rindle_tus, and the list of finished uploads refreshed after each batch.
import Uppy from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import Tus from '@uppy/tus'

import '@uppy/core/css/style.min.css'
import '@uppy/dashboard/css/style.min.css'
import './page.css'

const target = document.getElementById('uploader')
const message = document.getElementById('upload-message')
const finished = document.getElementById('finished')
// tus-js-client resolves the Location it gets back against the endpoint, so
// give it an absolute URL on the page's own origin.
const endpoint = new URL(target.dataset.endpoint, window.location.href).href

// One line per failed file of the current batch.
let problems = []

function showMessage(lines) {
  problems = lines
  message.textContent = lines.join('\n')
  message.hidden = lines.length === 0
}

// rindle_tus answers a refusal as text/plain "<code>: <message>"; that text is
// what the user needs to see, not tus-js-client's description of the request.
function describe(error, response) {
  const text = response?.body?.xhr?.responseText?.trim()
  if (text) return { refused: true, text }
  return { refused: false, text: error?.message ?? String(error) }
}

async function refreshFinished() {
  const response = await fetch(target.dataset.finishedUrl, { headers: { Accept: 'text/html' } })
  if (response.ok) finished.innerHTML = await response.text()
}

const uppy = new Uppy({ id: 'uploader' })
  .use(Dashboard, {
    target,
    inline: true,
    width: '100%',
    height: 380,
    showProgressDetails: true,
    proudlyDisplayPoweredByUppy: false,
    note: 'Any files, several at once. Pause, resume, or reload and re-add a file to resume it.',
  })
  .use(Tus, {
    endpoint,
    // Only what the server uses (the plugin adds filename and filetype from
    // these); Uppy's other meta fields would arrive as strings like "null".
    allowedMetaFields: ['name', 'type'],
    // Resuming after a reload goes through the fingerprint kept in
    // localStorage; a finished upload drops it so the same file can be sent anew.
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
  })

uppy.on('upload', () => showMessage([]))

uppy.on('upload-error', (file, error, response) => {
  const { refused, text } = describe(error, response)
  if (file) uppy.setFileState(file.id, { error: text })
  const name = file?.name ?? 'A file'
  showMessage([...problems, refused ? `${name} was refused: ${text}` : `${name} failed: ${text}`])
})

uppy.on('complete', (result) => {
  refreshFinished().catch((error) => showMessage([...problems, `Could not refresh the list: ${error}`]))
  document.body.dataset.lastBatch = result.failed.length ? 'failed' : 'complete'
})
