// The client's logic with `wx` stubbed: a fake server stands behind wx.request.
const test = require('node:test')
const assert = require('node:assert/strict')
const { createClient, classifyError } = require('../utils/wxauth')

// A stub `wx` whose request() is answered by `routes[method + ' ' + path](data, headers)`.
function stubWx(routes) {
  const storage = new Map()
  const calls = { login: 0, requests: [], checkSession: 0 }
  let codes = 0
  const wx = {
    calls,
    checkSessionFails: false,
    login({ success }) {
      calls.login++
      setImmediate(() => success({ code: `code-${++codes}` }))
    },
    checkSession({ success, fail }) {
      calls.checkSession++
      setImmediate(() => (wx.checkSessionFails ? fail({ errMsg: 'checkSession:fail' }) : success({})))
    },
    request({ url, method, header, data, success }) {
      const origin = url.match(/^https:\/\/[^/]+/)[0]
      const path = url.slice(origin.length)
      calls.requests.push({ origin, path, method, header, data })
      const body = data === undefined ? undefined : JSON.parse(data)
      const handler = routes[`${method} ${path}`]
      const [statusCode, resBody, resHeader] = handler ? handler(body, header) : [404, { error: 'not_found' }]
      setImmediate(() => success({ statusCode, data: resBody, header: resHeader || {} }))
    },
    getStorageSync: (k) => storage.get(k),
    setStorageSync: (k, v) => storage.set(k, v),
    removeStorageSync: (k) => storage.delete(k),
  }
  return wx
}

// A server that issues token-N for code-N and accepts only tokens in `valid`.
function loginRoutes(valid, extra = {}) {
  return Object.assign(
    {
      'POST /login': ({ code }) => {
        const token = code.replace('code', 'token')
        valid.add(token)
        return [200, { token, expiresIn: 600, openid: 'o1' }]
      },
      'GET /session': (_, header) =>
        valid.has((header.Authorization || '').replace('Bearer ', ''))
          ? [200, { valid: true, openid: 'o1', expiresIn: 600 }]
          : [401, { error: 'unauthorized', message: 'gone' }],
    },
    extra,
  )
}

const baseUrl = 'https://api.example.com/'

test('login posts the wx.login code and stores the token', async () => {
  const wx = stubWx(loginRoutes(new Set()))
  const auth = createClient({ baseUrl, wx })
  const who = await auth.login()
  assert.equal(who.token, undefined, 'the page never gets the token')
  assert.equal(auth.token(), 'token-1')
  assert.deepEqual(JSON.parse(wx.calls.requests[0].data), { code: 'code-1' })
  assert.equal(wx.calls.requests[0].header['content-type'], 'application/json')
})

test('a mini-program of a server with several apps names itself', async () => {
  const wx = stubWx(loginRoutes(new Set()))
  const auth = createClient({ baseUrl, wx, appid: 'wx1111111111111111' })
  await auth.login()
  assert.deepEqual(JSON.parse(wx.calls.requests[0].data), { code: 'code-1', appid: 'wx1111111111111111' })
})

test('refusals that a new login cannot mend are not retried', () => {
  for (const error of ['risk_rejected', 'unknown_app', 'unsupported_for_app', 'account_disabled']) {
    assert.deepEqual(classifyError(400, { error }, {}), { relogin: false, retry: false }, error)
  }
})

test('request logs in first, then sends the bearer token', async () => {
  const wx = stubWx(loginRoutes(new Set()))
  const auth = createClient({ baseUrl, wx })
  const session = await auth.request({ path: '/session' })
  assert.equal(session.valid, true)
  assert.equal(wx.calls.login, 1)
  assert.equal(wx.calls.requests[1].header.Authorization, 'Bearer token-1')
})

test('a 401 unauthorized logs in again and retries once', async () => {
  const valid = new Set()
  const wx = stubWx(loginRoutes(valid))
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  valid.clear() // the session expired server-side
  const session = await auth.request({ path: '/session' })
  assert.equal(session.valid, true)
  assert.equal(wx.calls.login, 2)
  assert.equal(auth.token(), 'token-2')
})

test('a second 401 after re-login is thrown, not looped', async () => {
  const wx = stubWx(loginRoutes(new Set(), { 'GET /session': () => [401, { error: 'unauthorized' }] }))
  const auth = createClient({ baseUrl, wx })
  await assert.rejects(auth.request({ path: '/session' }), (err) => err.status === 401)
  assert.equal(wx.calls.login, 2)
})

test('decrypt_failed renews the session and asks for the data again', async () => {
  const wx = stubWx(
    loginRoutes(new Set(), { 'POST /phone': () => [422, { error: 'decrypt_failed', message: 'log in again' }] }),
  )
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  await assert.rejects(
    auth.getPhoneNumber({ detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'a+b/c==', iv: 'i+v=' } }),
    (err) => err.code === 'decrypt_failed' && err.fetchAgain === true,
  )
  assert.equal(wx.calls.login, 2, 're-logged in')
  const phoneCalls = wx.calls.requests.filter((r) => r.path === '/phone')
  assert.equal(phoneCalls.length, 1, 'the stale ciphertext is not resent')
  // base64 travels as JSON: '+' is not turned into a space.
  assert.deepEqual(JSON.parse(phoneCalls[0].data), { encryptedData: 'a+b/c==', iv: 'i+v=' })
})

test('getPhoneNumber sends the code when the base library gives one', async () => {
  let sent
  const wx = stubWx(
    loginRoutes(new Set(), {
      'POST /phone': (body) => {
        sent = body
        return [200, { phoneNumber: '13800138000', purePhoneNumber: '13800138000', countryCode: '86' }]
      },
    }),
  )
  const auth = createClient({ baseUrl, wx })
  const phone = await auth.getPhoneNumber({ detail: { errMsg: 'getPhoneNumber:ok', code: 'phonecode' } })
  assert.equal(phone.phoneNumber, '13800138000')
  assert.deepEqual(sent, { code: 'phonecode' })
  await assert.rejects(
    auth.getPhoneNumber({ detail: { errMsg: 'getPhoneNumber:fail user deny' } }),
    (err) => err.code === 'user_denied',
  )
})

test('concurrent 401s share one wx.login', async () => {
  const valid = new Set()
  const wx = stubWx(loginRoutes(valid))
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  valid.clear()
  const results = await Promise.all([1, 2, 3].map(() => auth.request({ path: '/session' })))
  assert.equal(results.length, 3)
  assert.equal(wx.calls.login, 2, 'one initial login, one shared re-login')
})

test('a refused code is replaced by one fresh wx.login', async () => {
  let first = true
  const wx = stubWx({
    'POST /login': ({ code }) => {
      if (first) {
        first = false
        return [401, { error: 'invalid_code' }]
      }
      return [200, { token: code.replace('code', 'token') }]
    },
  })
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  assert.equal(auth.token(), 'token-2')
  assert.equal(wx.calls.login, 2)
})

test('ensureFreshSession logs in when WeChat no longer holds the session_key', async () => {
  const wx = stubWx(loginRoutes(new Set()))
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  await auth.ensureFreshSession()
  assert.equal(wx.calls.login, 1, 'a live session is kept')
  wx.checkSessionFails = true
  await auth.ensureFreshSession()
  assert.equal(wx.calls.login, 2)
})

test('classifyError maps the contract', () => {
  assert.deepEqual(classifyError(401, { error: 'unauthorized' }), { relogin: true, retry: true })
  assert.deepEqual(classifyError(422, { error: 'decrypt_failed' }), { relogin: true, retry: false, needsWxLogin: true })
  assert.deepEqual(classifyError(401, { error: 'signature_mismatch' }), { relogin: true, retry: false, needsWxLogin: true })
  assert.deepEqual(classifyError(401, { error: 'session_key_expired' }), { relogin: true, retry: false, needsWxLogin: true })
  assert.equal(classifyError(429, { error: 'rate_limited' }, { 'Retry-After': '60' }).wait, 60)
  assert.equal(classifyError(503, { error: 'upstream_unavailable' }, { 'retry-after': '2' }).wait, 2)
  assert.deepEqual(classifyError(403, { error: 'login_blocked' }), { relogin: false, retry: false })
  assert.deepEqual(classifyError(401, { error: 'invalid_code' }), { relogin: false, retry: false, fetchAgain: true })
})

test('a refused phone code asks for a new tap without logging in again', async () => {
  const wx = stubWx(
    loginRoutes(new Set(), {
      'POST /phone': () => [401, { error: 'invalid_code', message: 'used' }],
    }),
  )
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  await assert.rejects(
    auth.getPhoneNumber({ detail: { errMsg: 'getPhoneNumber:ok', code: 'used-code' } }),
    (err) => err.code === 'invalid_code' && err.fetchAgain === true,
  )
  assert.equal(wx.calls.login, 1)
})

test('verifySession logs in again when WeChat dropped the session_key', async () => {
  const valid = new Set()
  const wx = stubWx(
    loginRoutes(valid, {
      'GET /session?verify=wechat': (_, header) =>
        header.Authorization === 'Bearer token-1'
          ? [401, { error: 'session_key_invalid', message: 'gone' }]
          : [200, { valid: true, openid: 'o1', expiresIn: 600 }],
    }),
  )
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  const session = await auth.verifySession()
  assert.equal(session.openid, 'o1')
  assert.equal(wx.calls.login, 2)
  assert.equal(auth.token(), 'token-2')
  await auth.verifySession()
  assert.equal(wx.calls.login, 2, 'a session WeChat still holds is kept')
})

test('logout deletes the session on the server and forgets the token', async () => {
  const valid = new Set()
  let deleted = null
  const wx = stubWx(
    loginRoutes(valid, {
      'DELETE /session': (_, header) => {
        deleted = header.Authorization
        return [204, undefined]
      },
    }),
  )
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  await auth.logout()
  assert.equal(deleted, 'Bearer token-1')
  assert.equal(auth.token(), '')
  await auth.logout() // no token: nothing to send
  assert.equal(wx.calls.requests.filter((r) => r.method === 'DELETE').length, 1)
})

// The team's API behind the authorizer: API Gateway refuses a dead token itself
// with 403 (authorizer said no) or 401 (no token), bodies of its own.
function orderRoutes(valid) {
  return {
    'GET /orders': (_, header) =>
      valid.has((header.Authorization || '').replace('Bearer ', ''))
        ? [200, { openid: 'o1', orders: [] }]
        : [403, { message: 'Forbidden' }],
  }
}

test('callApi goes to apiBaseUrl with the bearer token', async () => {
  const valid = new Set()
  const wx = stubWx(loginRoutes(valid, orderRoutes(valid)))
  const auth = createClient({ baseUrl, apiBaseUrl: 'https://orders.example.com/', wx })
  const body = await auth.callApi({ path: '/orders' })
  assert.deepEqual(body, { openid: 'o1', orders: [] })
  const call = wx.calls.requests.at(-1)
  assert.equal(call.origin, 'https://orders.example.com')
  assert.equal(call.header.Authorization, 'Bearer token-1')
})

test("callApi logs in again once on the authorizer's 403, then retries", async () => {
  const valid = new Set()
  const wx = stubWx(loginRoutes(valid, orderRoutes(valid)))
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  valid.clear() // logged out elsewhere, or replaced by a later login
  const body = await auth.callApi({ path: '/orders' })
  assert.equal(body.openid, 'o1')
  assert.equal(wx.calls.login, 2)
  assert.deepEqual(wx.calls.requests.map((r) => r.path), ['/login', '/orders', '/login', '/orders'])
})

test('callApi logs in again once on 401, and gives up after a second refusal', async () => {
  const wx = stubWx(
    loginRoutes(new Set(), { 'GET /orders': () => [401, { message: 'Unauthorized' }] }),
  )
  const auth = createClient({ baseUrl, wx })
  await assert.rejects(auth.callApi({ path: '/orders' }), (err) => err.status === 401)
  // One login for the missing token, one after the refusal: never a loop.
  assert.equal(wx.calls.login, 2)
  assert.equal(wx.calls.requests.filter((r) => r.path === '/orders').length, 2)
})

test('callApi does not log in again for other errors', async () => {
  const wx = stubWx(loginRoutes(new Set(), { 'POST /orders': () => [500, { message: 'Internal Server Error' }] }))
  const auth = createClient({ baseUrl, wx })
  await assert.rejects(auth.callApi({ path: '/orders', method: 'POST', data: {} }), (err) => err.status === 500)
  assert.equal(wx.calls.login, 1)
})

test('login sends the kept device fields when the base library has them, and remembers newUser', async () => {
  const valid = new Set()
  const wx = stubWx(
    loginRoutes(valid, {
      'POST /login': ({ code }) => {
        const token = code.replace('code', 'token')
        valid.add(token)
        return [200, { token, expiresIn: 600, userId: 'u_AAAAAAAAAAAAAAAAAAAAAA', newUser: true, openid: 'o1' }]
      },
    }),
  )
  wx.getDeviceInfo = () => ({ brand: 'Apple', model: 'iPhone 15', system: 'iOS 18.1', platform: 'ios', benchmarkLevel: 30 })
  wx.getAppBaseInfo = () => ({ SDKVersion: '3.6.0', version: '8.0.50', language: 'zh_CN', theme: 'dark' })
  const auth = createClient({ baseUrl, wx })
  assert.equal(auth.lastLogin(), null)
  await auth.login()
  assert.deepEqual(JSON.parse(wx.calls.requests[0].data).device, {
    brand: 'Apple', model: 'iPhone 15', system: 'iOS 18.1', platform: 'ios',
    SDKVersion: '3.6.0', version: '8.0.50', language: 'zh_CN',
  })
  assert.deepEqual(auth.lastLogin(), { expiresIn: 600, userId: 'u_AAAAAAAAAAAAAAAAAAAAAA', newUser: true, openid: 'o1' })
  assert.equal(JSON.stringify(auth.lastLogin()).includes('token-'), false, 'the token is not kept outside storage')
})

test('account reads GET /account; deleteAccount sends DELETE /account and forgets the token', async () => {
  const valid = new Set()
  let deleted = false
  const wx = stubWx(
    loginRoutes(valid, {
      'GET /account': () => [200, { userId: 'u_AAAAAAAAAAAAAAAAAAAAAA', openid: 'o1', purePhoneNumber: '13800138000', createdAt: 1, lastLoginAt: 2 }],
      'DELETE /account': (_, header) => {
        deleted = valid.delete(header.Authorization.replace('Bearer ', ''))
        return [204, '']
      },
    }),
  )
  const auth = createClient({ baseUrl, wx })
  const account = await auth.account()
  assert.equal(account.purePhoneNumber, '13800138000')
  await auth.deleteAccount()
  assert.equal(deleted, true)
  assert.equal(auth.token(), '')
  const last = wx.calls.requests[wx.calls.requests.length - 1]
  assert.equal(`${last.method} ${last.path}`, 'DELETE /account')
})

test('a disabled account is not logged in again', async () => {
  const wx = stubWx({ 'POST /login': () => [403, { error: 'account_disabled', message: 'disabled' }] })
  const auth = createClient({ baseUrl, wx })
  await assert.rejects(auth.login(), (err) => err.status === 403 && err.code === 'account_disabled')
  assert.equal(wx.calls.login, 1, 'one wx.login only')
  assert.deepEqual(classifyError(403, { error: 'account_disabled' }, {}), { relogin: false, retry: false })
})

// A server that also issues refresh tokens: refresh-N for token-N; POST
// /refresh spends one and issues the next pair.
function refreshRoutes(valid, extra = {}) {
  let issued = 0
  const live = new Set()
  const pair = () => {
    issued++
    const token = `renewed-${issued}`
    const refreshToken = `refresh-${issued}-${'x'.repeat(32)}`
    valid.add(token)
    live.add(refreshToken)
    return { token, refreshToken, expiresIn: 600, refreshExpiresIn: 2592000, userId: 'u_AAAAAAAAAAAAAAAAAAAAAA', newUser: false, openid: 'o1' }
  }
  return loginRoutes(
    valid,
    Object.assign(
      {
        'POST /login': ({ code }) => [200, Object.assign(pair(), { newUser: true, code })],
        'POST /refresh': ({ refreshToken }) => {
          if (!live.delete(refreshToken)) return [401, { error: 'invalid_refresh_token', message: 'log in' }]
          return [200, pair()]
        },
      },
      extra,
    ),
  )
}

function watchConsole() {
  const lines = []
  const saved = {}
  for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
    saved[level] = console[level]
    console[level] = (...args) => lines.push(args.map(String).join(' '))
  }
  return { lines, restore: () => Object.assign(console, saved) }
}

test('a refused session is renewed with the refresh token, without wx.login', async () => {
  const valid = new Set()
  const wx = stubWx(refreshRoutes(valid))
  const auth = createClient({ baseUrl, wx })
  const seen = watchConsole()
  try {
    const who = await auth.login()
    assert.equal(who.refreshToken, undefined, 'the page never gets the refresh token')
    assert.equal(wx.getStorageSync('wxauth_refresh').startsWith('refresh-1-'), true)
    valid.clear() // the 10-minute session ended
    const session = await auth.request({ path: '/session' })
    assert.equal(session.valid, true)
    assert.equal(wx.calls.login, 1, 'no second wx.login')
    assert.equal(auth.token(), 'renewed-2')
    assert.equal(wx.getStorageSync('wxauth_refresh').startsWith('refresh-2-'), true, 'rotated')
  } finally {
    seen.restore()
  }
  assert.equal(seen.lines.some((line) => line.includes('refresh-')), false, 'the refresh token was logged')
})

test('concurrent 401s share one refresh', async () => {
  const valid = new Set()
  const wx = stubWx(refreshRoutes(valid))
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  valid.clear()
  const answers = await Promise.all([1, 2, 3].map(() => auth.request({ path: '/session' })))
  assert.equal(answers.every((a) => a.valid), true)
  assert.equal(wx.calls.requests.filter((r) => r.path === '/refresh').length, 1)
  assert.equal(wx.calls.login, 1)
})

test('a refused refresh token falls back to wx.login', async () => {
  const valid = new Set()
  const wx = stubWx(refreshRoutes(valid, { 'POST /refresh': () => [401, { error: 'invalid_refresh_token' }] }))
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  valid.clear()
  const session = await auth.request({ path: '/session' })
  assert.equal(session.valid, true)
  assert.equal(wx.calls.login, 2)
})

test('session_key_expired needs wx.login, not a refresh, and the data again', async () => {
  const wx = stubWx(
    refreshRoutes(new Set(), { 'POST /phone': () => [401, { error: 'session_key_expired', message: 'log in' }] }),
  )
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  await assert.rejects(
    auth.getPhoneNumber({ detail: { errMsg: 'getPhoneNumber:ok', encryptedData: 'AAAA', iv: 'BBBB' } }),
    (err) => err.code === 'session_key_expired' && err.fetchAgain === true,
  )
  assert.equal(wx.calls.login, 2)
  assert.equal(wx.calls.requests.filter((r) => r.path === '/refresh').length, 0)
})

test('logout forgets the refresh token too', async () => {
  const wx = stubWx(refreshRoutes(new Set(), { 'DELETE /session': () => [204, undefined] }))
  const auth = createClient({ baseUrl, wx })
  await auth.login()
  await auth.logout()
  assert.equal(wx.getStorageSync('wxauth_refresh'), undefined)
  assert.equal(auth.token(), '')
})
