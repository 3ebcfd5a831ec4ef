-- A user's own force-2FA override, postgres flavour (same as the other file): NULL inherits
-- (groups, then the global switch), 1 forces a second factor on this user, 0 does not
-- force one even where a group or the global switch would. The administrators' scope is
-- a settings row (force_2fa_admins), turned on when the first administrator is made on
-- a new installation, so an upgraded one keeps its behaviour.
ALTER TABLE users ADD COLUMN force_2fa BIGINT;
