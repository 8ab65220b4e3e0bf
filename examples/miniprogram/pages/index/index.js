const app = getApp()

Page({
  data: { openid: '', sessionInfo: '', phone: '', error: '' },

  async onShow() {
    try {
      await app.auth.ensureFreshSession()
      const session = await app.auth.request({ path: '/session' })
      this.setData({ openid: session.openid, sessionInfo: `valid, ${session.expiresIn}s left`, error: '' })
    } catch (err) {
      this.setData({ error: err.message })
    }
  },

  async onGetPhoneNumber(event) {
    try {
      const phone = await app.auth.getPhoneNumber(event)
      this.setData({ phone: phone.phoneNumber, error: '' })
    } catch (err) {
      // fetchAgain: the session was renewed or the phone code was spent; the user
      // must tap the button again.
      const message = err.fetchAgain ? 'Please tap the button again.' : err.message
      this.setData({ error: message })
    }
  },

  // GET /session?verify=wechat: the server asks WeChat whether our session_key
  // is still the user's; if not, the client logs in again.
  async onVerify() {
    try {
      const session = await app.auth.verifySession()
      this.setData({ openid: session.openid, sessionInfo: `verified, ${session.expiresIn}s left`, error: '' })
    } catch (err) {
      this.setData({ error: err.message })
    }
  },

  // GET /me through the wxauth authorizer, as any of the team's own routes would
  // be called: a refused token means one more login, then the call again.
  async onWhoAmI() {
    try {
      const me = await app.auth.callApi({ path: '/me' })
      this.setData({ openid: me.openid, sessionInfo: 'the authorizer knows us', error: '' })
    } catch (err) {
      this.setData({ error: err.message })
    }
  },

  async onLogout() {
    try {
      await app.auth.logout()
      this.setData({ openid: '', sessionInfo: 'logged out', phone: '', error: '' })
    } catch (err) {
      this.setData({ error: err.message })
    }
  },
})
