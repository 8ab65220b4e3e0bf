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
      // fetchAgain: the session was renewed; the user must tap the button again.
      const message = err.fetchAgain ? 'Please tap the button again.' : err.message
      this.setData({ error: message })
    }
  },
})
