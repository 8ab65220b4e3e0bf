const { createClient } = require('./utils/wxauth')

App({
  onLaunch() {
    // Replace with the ApiUrl output of `sam deploy`, or http://127.0.0.1:3000 for
    // `cargo run -p wxauth-local` (tick "do not verify request domains" in the devtools).
    // appid: this mini-program's, for a server that serves several apps.
    this.auth = createClient({
      baseUrl: 'http://127.0.0.1:3000',
      appid: wx.getAccountInfoSync().miniProgram.appId,
    })
    this.auth.ensureFreshSession().catch((err) => console.error('login failed', err))
  },
})
