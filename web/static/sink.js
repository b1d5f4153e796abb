// Disk sink worker (files.js): sync access handles write from workers only.
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
