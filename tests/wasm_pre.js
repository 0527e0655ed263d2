// emcc --pre-js for the test suite under node: emscripten's getenv reads its
// own ENV object, not the process's, so copy the host's variables in
// (NN_BACKEND, NN_THREADS, ... reach the tests as they do natively).
Module['preRun'] = Module['preRun'] || [];
Module['preRun'].push(function () {
    for (var k in process.env) ENV[k] = process.env[k];
});
