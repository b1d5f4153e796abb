// Disk sink worker (files.js): a sync access handle, which only workers
// get, writes a file's pieces with no copy through the browser process.
let h;
onmessage = async ({ data: [op, a, at] }) => {
  try {
    if (op == 'open') h = await (await (await navigator.storage.getDirectory()).getFileHandle(a, { create: true })).createSyncAccessHandle();
    else if (op == 'write') h.write(a, { at });
    else h.flush(), h.close();
    postMessage('');
  } catch (e) {
    postMessage(String(e));
  }
};
