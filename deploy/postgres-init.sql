-- One database per service (each owns its tables) and the portal's; the last one made is the one
-- the compose healthcheck asks for. Temporal's two (temporal, temporal_visibility) are made by its
-- own schema job (temporal-sql-tool, compose.yaml's temporal-schema).
CREATE DATABASE registration;
CREATE DATABASE verification;
CREATE DATABASE scoring;
CREATE DATABASE awards;
CREATE DATABASE portal;
