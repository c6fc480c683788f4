/* policy — see policy.h. */
#include "auth/policy.h"

static bool usable(const struct login_facts *f)
{
	return f->found && f->enabled;
}

enum login_check login_check_for(const struct login_facts *f)
{
	if (!usable(f) || !f->password_given)
		return CHECK_DUMMY;
	if (f->file)
		return CHECK_FILE;
	if (f->ldap)
		return CHECK_LDAP;
	return CHECK_DUMMY;
}

static bool has_password(const struct login_facts *f)
{
	return f->file || f->ldap;
}

bool login_wants_otp(const struct login_facts *f, enum check_result password)
{
	if (!usable(f) || !f->otp || !f->otp_given)
		return false;
	return has_password(f) ? password == CHECK_PASSED : true;
}

enum login_result login_result(const struct login_facts *f, enum check_result password,
			       enum check_result otp)
{
	if (!usable(f) || (!has_password(f) && !f->otp))
		return LOGIN_DENIED;
	if (has_password(f)) {
		if (password == CHECK_ERROR)
			return LOGIN_UNAVAILABLE;
		if (password != CHECK_PASSED)
			return LOGIN_DENIED;
		if (!f->otp)
			return LOGIN_OK;
		/* A right password without a code asks for the code. */
		if (!f->otp_given)
			return LOGIN_OTP_REQUIRED;
	} else if (!f->otp_given) {
		/* OTP-only: a missing code is a wrong one, or the answer
		 * would tell such users from unknown ones. */
		return LOGIN_DENIED;
	}
	return otp == CHECK_PASSED ? LOGIN_OK : LOGIN_DENIED;
}

bool proof_wants_otp(const struct login_facts *f, enum check_result password)
{
	return usable(f) && f->otp && f->otp_given && password != CHECK_PASSED;
}

enum login_result proof_result(const struct login_facts *f, enum check_result password,
			       enum check_result otp)
{
	if (!usable(f))
		return LOGIN_DENIED;
	if (has_password(f) && f->password_given && password == CHECK_PASSED)
		return LOGIN_OK;
	if (f->otp && f->otp_given && otp == CHECK_PASSED)
		return LOGIN_OK;
	if (has_password(f) && f->password_given && password == CHECK_ERROR && !f->otp_given)
		return LOGIN_UNAVAILABLE;
	return LOGIN_DENIED;
}
