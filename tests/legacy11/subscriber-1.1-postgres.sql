--
-- PostgreSQL database dump
--

\restrict Lt9HrY5LQXqXWpQXce8Lckht37vzGZeg3pP0gRIyx9GkA9LiWSQFEQotLdZ8izb

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: django_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.django_migrations (
    id integer NOT NULL,
    app character varying(255) NOT NULL,
    name character varying(255) NOT NULL,
    applied timestamp with time zone NOT NULL
);


--
-- Name: django_migrations_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.django_migrations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: django_migrations_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.django_migrations_id_seq OWNED BY public.django_migrations.id;


--
-- Name: subscriber_subscription; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.subscriber_subscription (
    id integer NOT NULL,
    hub character varying(1023) NOT NULL,
    topic character varying(1023) NOT NULL,
    verified boolean NOT NULL,
    verify_token character varying(255) NOT NULL,
    lease_expiration timestamp with time zone,
    secret character varying(255) NOT NULL
);


--
-- Name: subscriber_subscription_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.subscriber_subscription_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: subscriber_subscription_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.subscriber_subscription_id_seq OWNED BY public.subscriber_subscription.id;


--
-- Name: django_migrations id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.django_migrations ALTER COLUMN id SET DEFAULT nextval('public.django_migrations_id_seq'::regclass);


--
-- Name: subscriber_subscription id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.subscriber_subscription ALTER COLUMN id SET DEFAULT nextval('public.subscriber_subscription_id_seq'::regclass);


--
-- Data for Name: django_migrations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.django_migrations VALUES (1, 'subscriber', '0001_initial', '2026-12-05 08:28:23.177376+00');


--
-- Data for Name: subscriber_subscription; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.subscriber_subscription VALUES (1, 'http://hub.legacy11.test/', 'http://feeds.legacy11.test/verified.xml', true, '', '2036-12-02 08:28:23.194334+00', '');
INSERT INTO public.subscriber_subscription VALUES (2, 'https://secure-hub.legacy11.test/', 'http://feeds.legacy11.test/verified-secret.xml', true, '', '2036-12-02 08:28:23.201285+00', '#N@0NTs^k#CfINl$b*c342Kkll$J(06vT7_7k#@yvjUmT#xJH=');
INSERT INTO public.subscriber_subscription VALUES (3, 'http://hub.legacy11.test/', 'http://feeds.legacy11.test/expired.xml', true, '', '2026-12-05 08:28:24.207326+00', '');
INSERT INTO public.subscriber_subscription VALUES (4, 'https://secure-hub.legacy11.test/', 'http://feeds.legacy11.test/expired-secret.xml', true, '', '2026-12-05 08:28:24.213158+00', 'UHo@C8lZ6Oj4LZ)F8K8_P^+6OBHIjIU#fZqzDwj_+jejYQkU)u');
INSERT INTO public.subscriber_subscription VALUES (5, 'http://hub.legacy11.test/', 'http://feeds.legacy11.test/sync-verified.xml', true, '', NULL, '');
INSERT INTO public.subscriber_subscription VALUES (6, 'http://hub.legacy11.test/', 'http://feeds.legacy11.test/refused.xml', false, '', NULL, '');
INSERT INTO public.subscriber_subscription VALUES (7, 'http://hub.legacy11.test/', 'http://feeds.legacy11.test/pending.xml', false, '', NULL, '');
INSERT INTO public.subscriber_subscription VALUES (8, 'https://secure-hub.legacy11.test/', 'http://feeds.legacy11.test/pending-secret.xml', false, '', NULL, 'sQ9S5X72=Eq^7NzeWJ(l4HFpgE+ooK+xh5G(gGQdeJ_sgv+ZSJ');
INSERT INTO public.subscriber_subscription VALUES (9, 'http://hub.legacy11.test/', 'http://feeds.legacy11.test/leaving.xml', true, '', '2036-12-02 08:28:23.234766+00', '');
INSERT INTO public.subscriber_subscription VALUES (10, 'http://hub.legacy11.test/', 'http://feeds.legacy11.test/dup-verified.xml', true, '', '2026-12-05 09:28:23.24045+00', '');
INSERT INTO public.subscriber_subscription VALUES (11, 'http://hub.legacy11.test/', 'http://feeds.legacy11.test/dup-verified.xml', true, '', '2036-12-02 08:28:23.242909+00', '');
INSERT INTO public.subscriber_subscription VALUES (12, 'https://secure-hub.legacy11.test/', 'http://feeds.legacy11.test/dup-mixed.xml', true, '', '2036-12-02 08:28:23.248604+00', 'uMysMid4flnuFb04%ZnQw-2-hw$^a($RHSy+vp^BSoVBEiG-n(');
INSERT INTO public.subscriber_subscription VALUES (13, 'https://secure-hub.legacy11.test/', 'http://feeds.legacy11.test/dup-mixed.xml', false, '', NULL, '');
INSERT INTO public.subscriber_subscription VALUES (14, 'http://hub.legacy11.test/', 'http://feeds.legacy11.test/dup-unverified.xml', false, '', NULL, '');
INSERT INTO public.subscriber_subscription VALUES (15, 'http://hub.legacy11.test/', 'http://feeds.legacy11.test/dup-unverified.xml', false, '', NULL, '');
INSERT INTO public.subscriber_subscription VALUES (16, 'https://secure-hub.legacy11.test/', 'http://feeds.legacy11.test/verified.xml', true, '', '2036-12-02 08:28:23.256345+00', 'nZKSF*)xUb$W+Swa)5x-4Kmt_JbYI9LD3YQDTT^p5_7W^tw(*W');


--
-- Name: django_migrations_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.django_migrations_id_seq', 1, true);


--
-- Name: subscriber_subscription_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.subscriber_subscription_id_seq', 16, true);


--
-- Name: django_migrations django_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.django_migrations
    ADD CONSTRAINT django_migrations_pkey PRIMARY KEY (id);


--
-- Name: subscriber_subscription subscriber_subscription_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.subscriber_subscription
    ADD CONSTRAINT subscriber_subscription_pkey PRIMARY KEY (id);


--
-- PostgreSQL database dump complete
--

\unrestrict Lt9HrY5LQXqXWpQXce8Lckht37vzGZeg3pP0gRIyx9GkA9LiWSQFEQotLdZ8izb

