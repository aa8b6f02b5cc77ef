// The benchmark pages' one job runner: a page runs each job in a fresh module worker (as an application runs
// inference off the main thread), shows its log, and hands results to the driver through window.emitResult /
// window.emitLog (the driver's page.exposeFunction). The worker posts {type: 'result', result},
// {type: 'log', text}, then {type: 'done'} or {type: 'error', error}.
const out = document.getElementById('out');
export const show = (text) => { out.textContent += text + '\n'; };

// Resolves with null when the job finished, or with the error text.
export const runWorkerJob = (workerUrl, config) => new Promise((resolve) => {
  const worker = new Worker(workerUrl, { type: 'module' });
  worker.onmessage = ({ data }) => {
    if (data.type === 'result') {
      show(JSON.stringify(data.result));
      window.emitResult?.(data.result);
    } else if (data.type === 'log') {
      show(data.text);
      window.emitLog?.(data.text);
    } else {
      worker.terminate();
      resolve(data.type === 'error' ? data.error : null);
    }
  };
  worker.onerror = (e) => { worker.terminate(); resolve(`worker error: ${e.message || e}`); };
  worker.postMessage(config);
});

show(`crossOriginIsolated: ${crossOriginIsolated}, hardwareConcurrency: ${navigator.hardwareConcurrency}`);
